# aepsl: `make demo` runs the main job on the embedded synthetic data; `make test` runs the tests.
SWIFT ?= swift
RELEASE_TEST = $(SWIFT) test -c release -Xswiftc -enable-testing --scratch-path .build-test

.PHONY: deps build demo test bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

demo: build
	.build/release/aepsl demo

# The tests train networks and run filters: they run in release mode.
test: deps
	$(RELEASE_TEST)

bench: build
	.build/release/aepsl bench engine --compare-pytorch --json bench-engine.json

clean:
	rm -rf .build .build-test

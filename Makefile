# aepsl: `make demo` runs the main job on the embedded synthetic data; `make test` runs the tests.
SWIFT ?= swift
RELEASE_TEST = $(SWIFT) test -c release -Xswiftc -enable-testing --scratch-path .build-test

.PHONY: deps build demo test bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# The whole method on the embedded synthetic dataset; a rerun finds everything done.
demo: build
	.build/release/aepsl run --run runs/demo

# The tests train networks and run filters: they run in release mode. The report's browser
# test (Tests/ReportTests) drives headless Chromium, which --with-chromium installs.
test:
	@bash scripts/install-deps.sh --with-chromium
	$(RELEASE_TEST)

bench: build
	.build/release/aepsl bench engine --compare-pytorch --json bench-engine.json

clean:
	rm -rf .build .build-test

# aepsl: `make demo` runs the main job on the embedded synthetic data; `make test` runs the tests.
SWIFT ?= swift
# The tests build with the MPI trait so that Tests/DistributedTests can run mpirun -np 2.
RELEASE_TEST = $(SWIFT) test -c release -Xswiftc -enable-testing --scratch-path .build-test --traits MPI

.PHONY: deps build build-mpi demo test example docs bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# aepsl with Open MPI: mpirun -np K .build/release/aepsl erase|train-seg|masks|predict ...
build-mpi:
	@bash scripts/install-deps.sh --with-mpi
	$(SWIFT) build -c release --traits MPI

# The whole method on the embedded synthetic dataset; a rerun finds everything done.
demo: build
	.build/release/aepsl run --run runs/demo

# The tests train networks and run filters: they run in release mode. The report's browser
# test (Tests/ReportTests) drives headless Chromium, which --with-chromium installs; the
# data-parallel tests (Tests/DistributedTests) run mpirun, which --with-mpi installs; the export
# tests (Tests/ExportTests) run onnxruntime from .venv-test, which python-test-env.sh makes; the
# real-file tests (Tests/VOCFilesTests) read labelme-examples, which --with-test-data installs.
# The example package is built and run against the aepsl the tests built before the tests run,
# so that the run ends with the test summary line.
test:
	@bash scripts/install-deps.sh --with-chromium --with-mpi --with-python3 --with-test-data
	@bash scripts/python-test-env.sh
	$(SWIFT) build -c release -Xswiftc -enable-testing --scratch-path .build-test --traits MPI --build-tests
	SWIFT=$(SWIFT) bash scripts/check-example.sh .build-test/release/aepsl
	$(RELEASE_TEST) --skip-build

# Examples/LabelImage, a package that depends on aepsl, built and checked against `aepsl predict`.
example: build
	SWIFT=$(SWIFT) bash scripts/check-example.sh .build/release/aepsl

# DocC documentation of AEPSLEngine, AEPSLCRF and AEPSLMethod in .build-docs/aepsl.doccarchive
# (scripts/build-docs.sh says how to open it). Not part of `make test`: it is a release build of its own.
docs:
	SWIFT=$(SWIFT) bash scripts/build-docs.sh

bench: build
	.build/release/aepsl bench engine --compare-pytorch --json bench-engine.json

clean:
	rm -rf .build .build-test .build-example .build-docs

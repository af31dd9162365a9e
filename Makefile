# The few commands everyone uses. `make test` and `make run` work on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install lint-tools system-tools build-dev format lint test test-rust test-python bench run

## install: the package (Rust core built in release mode) and the test tools
install: system-tools
	$(PIP) install --quiet --editable '.[test]'

## lint-tools: the package with the linters (ruff, mypy) beside the test tools
lint-tools: system-tools
	$(PIP) install --quiet --editable '.[dev]'

## system-tools: Debian packages the tests use (systemd-analyze checks the units;
## mkfs.ext4 makes the small filesystems of the disk-full tests)
system-tools:
	@missing=""; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v mkfs.ext4 >/dev/null || missing="$$missing e2fsprogs"; \
	[ -z "$$missing" ] || (apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing)

## build-dev: rebuild the Rust core in place after editing rust/
build-dev:
	$(PIP) install --quiet --no-deps --editable .

format:
	cargo fmt
	ruff format python tests benchmarks
	ruff check --fix python tests benchmarks

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	ruff check python tests benchmarks
	ruff format --check python tests benchmarks
	mypy
	$(PYTHON) -m mypy.stubtest artisync._core

test-rust:
	cargo test --release --no-default-features

test-python:
	$(PYTHON) -m pytest

## test: everything CI runs
test: install test-rust test-python

## bench: the speed checks, each printed as a ratio measured side by side (W&B is a peer)
bench: install
	$(PIP) install --quiet --editable '.[bench]'
	$(PYTHON) benchmarks/bench_hash.py
	$(PYTHON) benchmarks/bench_registry.py
	$(PYTHON) benchmarks/bench_read.py
	$(PYTHON) benchmarks/bench_write.py
	$(PYTHON) benchmarks/bench_s3.py
	$(PYTHON) benchmarks/bench_expand.py
	$(PYTHON) benchmarks/bench_memory.py

## run: the main job on the embedded defaults: the daemon, with one logged example
run: install
	PYTHON=$(PYTHON) scripts/run.sh

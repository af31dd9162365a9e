# The few commands everyone uses. `make run` and `make test` work on a fresh machine, as
# any user: they make a virtual environment (.venv) and install into it, never into the
# system's Python. PYTHON=/path/to/python uses an environment of your own instead.
BOOTSTRAP ?= python3
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
PIP = $(PYTHON) -m pip
# Debian's postgresql-15 (tests/postgres_server.py runs it for the registry tests)
PG_INITDB = /usr/lib/postgresql/15/bin/initdb

.PHONY: venv install install-run lint-tools system-tools check-system-tools build-dev \
	format lint test test-rust test-python bench run

## venv: the virtual environment, made with $(BOOTSTRAP) (3.11 or newer) when missing
venv:
	@if [ "$(PYTHON)" = "$(VENV)/bin/python" ] && [ ! -x "$(PYTHON)" ]; then \
		$(BOOTSTRAP) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
			echo "artisync needs Python 3.11 or newer; $(BOOTSTRAP) is" \
				"$$($(BOOTSTRAP) --version 2>&1). Name another: make $(MAKECMDGOALS) BOOTSTRAP=python3.12" >&2; \
			exit 1; }; \
		$(BOOTSTRAP) -m venv $(VENV) || { \
			echo "could not make $(VENV): on Debian or Ubuntu, install python3-venv" \
				"(sudo apt-get install python3-venv), then run make again" >&2; \
			rm -rf $(VENV); exit 1; }; \
	fi

## install-run: the package alone (the Rust core built in release mode): what running needs
install-run: venv
	$(PIP) install --quiet --editable .

## install: the package and the test tools
install: venv
	$(PIP) install --quiet --editable '.[test]'

## lint-tools: the package with the linters (ruff, mypy) beside the test tools
lint-tools: venv
	$(PIP) install --quiet --editable '.[dev]'

## system-tools: Debian packages the tests use (systemd-analyze checks the units;
## mkfs.ext4 makes the small filesystems of the disk-full tests; postgresql-15 is the
## server registry's database, which the registry tests start), and python3-venv when
## $(BOOTSTRAP) cannot make a venv. Needs root: CI runs it.
system-tools:
	@missing=""; \
	$(BOOTSTRAP) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v mkfs.ext4 >/dev/null || missing="$$missing e2fsprogs"; \
	[ -x $(PG_INITDB) ] || missing="$$missing postgresql-15"; \
	[ -z "$$missing" ] || (apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing)

## check-system-tools: say what the tests miss, and how to get it, before they run
check-system-tools:
	@missing=""; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null || missing="$$missing e2fsprogs"; \
	[ -x $(PG_INITDB) ] || missing="$$missing postgresql-15"; \
	[ -z "$$missing" ] || { echo "the tests need the Debian packages:$$missing;" \
		"install them with: sudo make system-tools" >&2; exit 1; }

## build-dev: rebuild the Rust core in place after editing rust/
build-dev: venv
	$(PIP) install --quiet --no-deps --editable .

format:
	cargo fmt
	$(PYTHON) -m ruff format python tests benchmarks examples
	$(PYTHON) -m ruff check --fix python tests benchmarks examples

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benchmarks examples
	$(PYTHON) -m ruff format --check python tests benchmarks examples
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest artisync._core

test-rust:
	cargo test --release --no-default-features

test-python:
	$(PYTHON) -m pytest

## test: everything CI runs
test: check-system-tools install test-rust test-python

## bench: the speed checks, each printed as a ratio measured side by side (W&B is a peer)
bench: install
	$(PIP) install --quiet --editable '.[bench]'
	$(PYTHON) benchmarks/bench_hash.py
	$(PYTHON) benchmarks/bench_lanes.py
	$(PYTHON) benchmarks/bench_registry.py
	$(PYTHON) benchmarks/bench_read.py
	$(PYTHON) benchmarks/bench_write.py
	$(PYTHON) benchmarks/bench_s3.py
	$(PYTHON) benchmarks/bench_expand.py
	$(PYTHON) benchmarks/bench_memory.py
	$(PYTHON) benchmarks/bench_server.py
	$(PYTHON) benchmarks/bench_auth.py

## run: the main job on the embedded defaults: the daemon, with one logged example
run: install-run
	@PYTHON=$(PYTHON) exec scripts/run.sh

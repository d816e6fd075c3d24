# The two commands of the README: `make test` and `make run`. Both install what they need: uv (from PyPI, into
# .tools/, when it is not on PATH), the locked environment, and Postgres (embedded, unless DATABASE_URL is set).
# `make test` also installs Debian's chromium for the console's tests when it is missing (root or passwordless sudo).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(CURDIR)/.tools/uv/bin/uv
endif
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: test run sync browser lint typecheck pytest bench bench-quick

$(CURDIR)/.tools/uv/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools/uv uv

sync: $(UV)
	$(UV) sync --locked

lint: sync
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync ruff check .

typecheck: sync
	$(UV) run --no-sync mypy

# First in `make test`, so that a browser it cannot install stops it before anything else runs.
browser:
	@infra/ensure-chromium.sh

pytest: sync browser
	$(UV) run --no-sync pytest

test: browser lint typecheck pytest

run: sync
	$(UV) run --no-sync journal dev --host $(HOST) --port $(PORT)

# Not part of `make test`: measures the stream and writes docs/BENCHMARKS.md (docs/BENCHMARKS.md says what is measured).
bench: $(UV)
	$(UV) sync --locked --group bench
	$(UV) run --no-sync python services/api/bench/run.py --out docs/BENCHMARKS.md

bench-quick: $(UV)
	$(UV) sync --locked --group bench
	$(UV) run --no-sync python services/api/bench/run.py --quick

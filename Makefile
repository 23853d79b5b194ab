# Liaison developer tasks.
#
#   make setup / make venv   create .venv and install the locked dependencies and the package
#   make lock                re-resolve requirements*.lock from pyproject.toml (newest versions)
#   make run                 serve on 127.0.0.1:8000 with SQLite and a demo feed
#                            (make run ARGS="serve --port 9000" runs another subcommand)
#   make test                ruff + mypy + lint-imports (.importlinter) + pytest; provisions PostgreSQL when possible
#                            (extra pytest args: make test PYTEST_ARGS="-k routing -x";
#                            one process: make test TEST_WORKERS=0)
#   make bench               ingest benchmark
#   make clean               remove caches and build artefacts (keeps .venv)
#   make distclean           clean + remove .venv

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
PG_URL_FILE := .pg-test-url
# pytest workers (pytest-xdist): tests wait on servers, the browser and the clock, so on a
# 2-core machine three keep both cores busy where two left them idle (19.6 against 24.7
# minutes, the same machine); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3

ARGS        ?= demo
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: help setup venv lock run test bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

setup venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The versions that were tested, from the lock file (hash-checked), then Liaison itself.
# Re-run pip only when pyproject.toml or the lock is newer than the stamp.
$(STAMP): pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

# requirements.lock: what the service needs (the Dockerfile); requirements-dev.lock: that
# and the test tools (make setup). Both for any platform, from Python 3.11 up.
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q
lock: | $(BIN)/python
	$(BIN)/pip install -q uv
	$(LOCK) -U -o requirements.lock
	$(LOCK) -U --extra dev -o requirements-dev.lock

run: setup
	$(BIN)/liaison $(ARGS)

# ensure-postgres.sh writes the admin URL to $(PG_URL_FILE), or (outside CI)
# removes it and says the PostgreSQL tests will be skipped.
# ensure-chromium.sh installs Debian's chromium for the browser tests (tests/web)
# as root, or (outside CI) says they will be skipped.
test: setup
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	set -e; \
	if [ -s $(PG_URL_FILE) ]; then \
		export LIAISON_TEST_POSTGRES_URL="$$(cat $(PG_URL_FILE))"; \
	fi; \
	$(BIN)/ruff check .; \
	$(BIN)/mypy; \
	$(BIN)/lint-imports; \
	$(BIN)/pytest -q --durations=15 -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
		$(PG_URL_FILE)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

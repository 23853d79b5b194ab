# Liaison developer tasks.
#
#   make setup / make venv   create .venv and install the package with [dev] extras
#   make run                 serve on 127.0.0.1:8000 with SQLite and a demo feed
#                            (make run ARGS="serve --port 9000" runs another subcommand)
#   make test                ruff + mypy + pytest; provisions PostgreSQL when possible
#                            (extra pytest args: make test PYTEST_ARGS="-k routing -x")
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

ARGS        ?= demo
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: help setup venv run test bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

setup venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-run pip only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@

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
	$(BIN)/pytest -q --durations=15 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(PG_URL_FILE)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

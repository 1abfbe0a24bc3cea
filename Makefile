# The two commands of the README: `make run` and `make test`. Everything they need, they install.

PYTHON ?= python3
# Use the active virtual environment when there is one; otherwise the project's own .venv.
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.transom-installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit install bench fuzz soak clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: a local broker with OpenBao in dev mode, SQLite and the embedded scheduler.
run: install
	$(BIN)/transom dev

## make test: lint, type-check and the whole suite against real OpenBao and PostgreSQL.
test: install system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app tests scripts migrations
	$(BIN)/ruff format --check app tests scripts migrations

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Headless Chromium for the page tests (Debian packages; Playwright drives the system browser).
system-deps:
	@command -v chromium >/dev/null 2>&1 || scripts/install-system-deps.sh

bench: install
	$(BIN)/python scripts/run_benchmarks.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis

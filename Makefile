# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# `make run` installs only what serving needs; `make test` (and `make install`) adds the
# development tools (pytest, ruff, mypy, Playwright, the OpenAPI checkers) on top.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
SERVING := $(VENV)/.installed-serving
TOOLS := $(VENV)/.installed

.PHONY: install install-serving run test lint typecheck clean

install: $(TOOLS)

install-serving: $(SERVING)

$(SERVING): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(TOOLS): $(SERVING)
	$(PIP) -e '.[dev]'
	touch $@

run: $(SERVING)
	DROPSYNC_DEMO=$${DROPSYNC_DEMO:-true} $(BIN)/python -m app serve

lint: $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TOOLS)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) dropsync.db dropsync.db-wal dropsync.db-shm .pytest_cache .mypy_cache .ruff_cache

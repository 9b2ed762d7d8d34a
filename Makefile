# Every target works on a fresh clone: `make venv` is a dependency where one is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint check bench bench-quick clean

# Two stamps: the runtime alone (what `make demo` needs), then the dev tools on top of it.
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/python -m compileall -q src  # an editable install compiles nothing by itself
	@touch $@

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

## venv: .venv with queuectl (editable) and the dev tools (tests, linters)
venv: $(DEV)

## demo: install the runtime only, run a few example jobs on the embedded SQLite store
demo: $(RUNTIME)
	./scripts/demo

## lint: ruff, formatting, import layers and mypy --strict
lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# pytest keeps each test module, rewritten for its assertions, as compiled bytecode; where
# PYTHONDONTWRITEBYTECODE is set it could not, and every run would rewrite them all again.
unexport PYTHONDONTWRITEBYTECODE

## test: lint, then the whole test suite on both backends, four processes at a time
test: lint
	$(BIN)/pytest -n 4 --dist worksteal -q tests

check: test

bench: venv
	$(BIN)/python -m bench

bench-quick: venv
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

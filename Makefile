# llmroute — the two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint unit bench router-artifact clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## demo: set up, validate the embedded defaults, show the catalog, and route sample prompts.
demo: setup
	$(BIN)/llmroute config check
	$(BIN)/llmroute models
	$(BIN)/llmroute route "What's 2+2?"
	mkdir -p out
	$(BIN)/llmroute route --input examples/prompts.jsonl --output out/decisions.jsonl

## test: set up, lint (ruff), type-check (mypy), and run the whole test suite.
test: lint unit

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest

## bench: routing-decision benchmarks (run by hand; results go in docs/benchmarks.md).
bench: setup
	$(BIN)/python bench/bench_routing.py

## router-artifact: rebuild the bundled learned router from ../shared/data (deterministic, ~2 min).
router-artifact: setup
	$(BIN)/python scripts/build_router_artifact.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

# llmroute — the two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every install is pinned by constraints.txt (the whole locked closure); `make lock` refreshes it.
CONSTRAINTS := constraints.txt
PIP := $(BIN)/python -m pip install -q -c $(CONSTRAINTS)
TORCH := torch==2.13.0
LOCK_VENV := out/lock-venv

.PHONY: setup kernel demo test lint unit bench router-artifact embed lock clean

# hatch_build.py compiles the featurizer's optional C kernel during the editable install.
$(STAMP): pyproject.toml $(CONSTRAINTS) hatch_build.py src/llmroute/learn/_kernel.c
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## kernel: recompile the featurizer's C kernel in place (after editing src/llmroute/learn/_kernel.c).
kernel: setup
	$(BIN)/python hatch_build.py

## demo: set up, then replay the RouterBench test prompts through the gateway (model=auto, the
## real recorded answers of 11 models, no API keys), record outcomes as feedback in the ledger, and
## print the cost against always-gpt-4 and the quality kept; then a report over that ledger; then
## the control demo: an A/B experiment of two policies and a budget that downgrades, with the
## experiment's report.
demo: setup
	rm -rf out/demo out/demo-control
	$(BIN)/llmroute demo --out out/demo
	$(BIN)/llmroute report -c out/demo/llmroute.yaml --by model --html out/demo/report.html \
		--frontier out/demo/frontier.json
	$(BIN)/llmroute demo --control --out out/demo-control
	$(BIN)/llmroute experiments report demo-ab -c out/demo-control/llmroute.yaml

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

## embed: the optional sentence-embedding featurizer (docs/learning.md): install the `embed` extra
## (torch pinned to the CPU wheel first, else pip pulls CUDA) and distill the static model (~1 min).
embed: setup
	$(PIP) $(TORCH)
	$(PIP) -e '.[dev,embed]'
	$(BIN)/python scripts/distill_static_embeddings.py --out out/static-minilm

## lock: regenerate constraints.txt: install `.[dev,embed]` unpinned (newest releases pyproject.toml
## allows; torch the CPU wheel) in a scratch venv and freeze it, keeping the file's # header.
## Then `make test` and commit constraints.txt.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q $(TORCH)
	$(LOCK_VENV)/bin/python -m pip install -q -e '.[dev,embed]'
	{ grep '^#' $(CONSTRAINTS); $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable \
	  | sed -E 's/^([^=]+==[^+]+)\+.*/\1/'; } > $(CONSTRAINTS).new  # local labels (+cpu) dropped
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

# One entry point for set-up, the demo and every check. Each target installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_STAMP := $(VENV)/.demo-$(shell cksum pyproject.toml | cut -d' ' -f1)
CHECK_PYTHON := $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cortex-tui needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'

.PHONY: demo test check lint fmt clean bench bench-quick

# The demo needs cortex-tui and scikit-learn (its sample API) only; the tests need the rest.
$(DEMO_STAMP): pyproject.toml
	@$(CHECK_PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing cortex-tui and the demo's scikit-learn into $(VENV) (first run only; pip's progress follows) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e '.[samples]' \
		| grep --line-buffered -E '^(Collecting|Successfully installed)' || true
	@$(BIN)/python -c 'import cortex_tui, sklearn' && rm -f $(VENV)/.demo-* && touch $@

$(STAMP): pyproject.toml
	@$(CHECK_PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing cortex-tui and its dependencies into $(VENV) (first run only) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## demo: deploy the iris classifier on the embedded orchestrator and run a real job
demo: $(DEMO_STAMP)
	$(BIN)/cortex-tui deploy sample_apis/iris-classifier
	$(BIN)/cortex-tui submit iris-classifier --items sample_apis/iris-classifier/sample.json \
		--batch-size 5 --workers 2 --wait
	@echo
	@echo "next: source $(VENV)/bin/activate, then try: cortex-tui get iris-classifier"

# Tests mostly wait on worker processes, containers and the moto server: four pytest
# workers keep two cores busy. TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 4

## test: lint and types (ruff, mypy), then the whole test suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

BENCH_STAMP := $(VENV)/.bench-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	@echo "installing the benchmark extra (Ray Data, matplotlib) into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@rm -f $(VENV)/.bench-* && touch $@

## bench: the full benchmark run (see README, Performance); results go to benchmarks/results/
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

## bench-quick: the same figures at smaller sizes, in under 2 minutes
bench-quick: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py --quick

## check: the same as test (lint, types, tests)
check: test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

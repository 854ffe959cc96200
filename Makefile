# One command per chore. `make help` lists them. Everything runs from a venv this Makefile creates.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install demo demo-once test test-fast lint typecheck bench clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Jaring with its pinned dependencies

demo: $(STAMP) ## Run the whole system against local stand-ins; review queue at http://127.0.0.1:8000
	$(BIN)/jaring migrate
	$(BIN)/jaring demo

demo-once: $(STAMP) ## One full demo cycle without serving; prints a JSON summary
	$(BIN)/jaring migrate
	$(BIN)/jaring demo --once

test: $(STAMP) ## Lint, type-check and run the whole test suite (warnings are errors)
	$(BIN)/ruff check .
	$(BIN)/mypy jaring classifier harvester pipelines review standins
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## The suite without browser and slow tests
	$(BIN)/python -m pytest -m "not browser and not slow"

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check jaring pipelines/celery_app.py
	$(BIN)/mypy jaring classifier harvester pipelines review standins

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy jaring classifier harvester pipelines review standins

bench: $(STAMP) ## Benchmarks: classifier speed, ingest, inbox, forwarding (medians and ratios)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## Remove the venv and local data
	rm -rf $(VENV) data .pytest_cache .ruff_cache

# shelfwise — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo services services-stop test test-all lint format typecheck check bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shelfwise needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[train,serve,encoders,cluster,dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

demo: install ## Generate the sample shop, run the pipeline, serve the API on 127.0.0.1:8000
	$(BIN)/shelfwise demo

services: ## Start a loopback redis-server, install Prometheus + Alertmanager + Chromium (apt) for the tests
	@scripts/services.sh start >/dev/null || echo "services: no redis-server; Redis tests will be skipped"
	@scripts/install_monitoring.sh >/dev/null || echo "services: no prometheus/alertmanager; monitoring tests will be skipped"
	@scripts/install_chromium.sh >/dev/null || echo "services: no chromium; the console's browser tests will be skipped"

services-stop: ## Stop the test redis-server
	@scripts/services.sh stop

test: install services ## Run the test suite (slow tests excluded; see test-all)
	$(BIN)/python -m pytest

test-all: install services ## Run every test, slow ones included
	$(BIN)/python -m pytest -m ''

lint: install ## ruff lint and format check; the import contracts (docs/architecture.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict on src/
	$(BIN)/mypy

check: lint typecheck test ## Everything CI runs

bench: install ## Pipeline benchmark on ../shared/data and a generated 1M-event shop
	$(BIN)/python benchmarks/pipeline.py

clean: ## Remove caches and demo state (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache demo .shelfwise

# Everyday targets. `make demo` and `make test` are the two set-up commands of the README:
# each creates the virtual environment on first use, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ROWS   ?= 2000000
PROVIDER ?= aws

.PHONY: setup demo test lint schema bench clean focus-validator

# The official FOCUS validator needs Python >= 3.12 and pyarrow < 21: it gets its own venv,
# built once (stamp) and reused. Without a 3.12 the tests that need it skip (fail under CI=true).
FV_VENV   ?= .venv-focus-validator
FV_PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12))
FV_STAMP  := $(FV_VENV)/.installed-2.2.1

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup            ## AWS, GCP and Azure demo bills and a Kubernetes cluster: load, split, print, report
	$(BIN)/costflow demo

# Azurite (the Azure Storage emulator) for the az:// tests, installed project-locally with npm.
AZURITE_VERSION := 3.37.0
AZURITE := .ci/node/node_modules/.bin/azurite-blob

$(AZURITE):
	@if command -v npm >/dev/null; then \
	npm install --prefix .ci/node --no-audit --no-fund --silent azurite@$(AZURITE_VERSION); \
	else echo "note: npm not found: Azurite not installed (the az:// tests skip; CI fails)"; fi

focus-validator: $(FV_STAMP)

$(FV_STAMP):
	@if [ -z "$(FV_PYTHON)" ]; then echo "note: no Python 3.12 found: focus-validator not installed (its tests skip; CI fails)"; \
	else $(FV_PYTHON) -m venv $(FV_VENV) && \
	$(FV_VENV)/bin/python -m pip install --quiet 'focus-validator==2.2.1' 'pyarrow==20.0.0' && touch $(FV_STAMP); fi

test: setup $(AZURITE) focus-validator  ## the layer contracts, then the whole test suite (.ci/run)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10

lint: setup            ## ruff, mypy and the layer contracts (import-linter, pyproject.toml)
	$(BIN)/ruff check costflow tests bench dataflow_templates
	$(BIN)/mypy costflow
	$(BIN)/lint-imports

schema: setup          ## re-render costflow/schemas/generated/ after editing costflow/schemas
	$(BIN)/python -m costflow.schemas.render --write

bench: setup           ## make bench ROWS=2000000 [PROVIDER=gcp|azure]
	$(BIN)/python bench/ingest_bench.py --provider $(PROVIDER) --rows $(ROWS)

clean:
	rm -rf .costflow exports bench/out .pytest_cache

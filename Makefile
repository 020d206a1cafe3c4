# Everyday targets. `make demo` and `make test` are the two set-up commands of the README:
# each creates the virtual environment on first use, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ROWS   ?= 2000000

.PHONY: setup demo test lint schema bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup            ## generate sample CUR exports, ingest them into DuckDB, print costs
	$(BIN)/costflow demo

test: setup            ## the whole test suite (what .ci/run calls)
	$(BIN)/python -m pytest -n 2 --durations=10

lint: setup
	$(BIN)/ruff check costflow tests bench
	$(BIN)/mypy costflow

schema: setup          ## re-render the committed schema files after editing costflow/schemas
	$(BIN)/python -m costflow.schemas.render --write

bench: setup           ## make bench ROWS=2000000
	$(BIN)/python bench/ingest_bench.py --rows $(ROWS)

clean:
	rm -rf .costflow exports bench/out .pytest_cache

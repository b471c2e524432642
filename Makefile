# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
KNOCK_ARGS ?=

.PHONY: run demo test lint bench clean

$(BIN)/knock: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/knock
	$(BIN)/knock serve $(KNOCK_ARGS)

demo: $(BIN)/knock
	$(BIN)/knock demo $(KNOCK_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	sh scripts/prepare-test-host.sh
	$(BIN)/pytest

bench: $(VENV)/.dev
	$(BIN)/python bench/informs.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

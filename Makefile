# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
KNOCK_ARGS ?=

.PHONY: run demo test lint mutants bench clean

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

# Renames, drops and reorders every element of the CWMP codec's table in turn and prints which
# golden and which schema check caught each mutant (a few seconds; `make test` runs it too).
mutants: $(VENV)/.dev
	$(BIN)/pytest -q -s tests/cwmp/test_mutants.py

# Every benchmark in turn, as docs/performance.md quotes them (about half an hour on 2 cores).
# Each prints its table and writes JSON under bench/results/.
bench: $(VENV)/.dev
	$(BIN)/python bench/informs.py
	$(BIN)/python bench/informs_scale.py --processes 1,2
	$(BIN)/python bench/store_sessions.py
	$(BIN)/python bench/rss_devices.py --devices 100000
	$(BIN)/python bench/stun.py
	$(BIN)/python bench/xmpp.py
	$(BIN)/python bench/xmpp_client.py
	$(BIN)/python bench/dashboard.py
	for n in 1000 10000; do for m in http udp xmpp; do \
	    $(BIN)/python bench/connreq.py --method $$m --devices $$n \
	        --json bench/results/connreq-$$m-$$n.json || exit 1; done; done
	$(BIN)/python bench/fleet.py --cr http,udp,xmpp
	$(BIN)/python bench/abuse.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

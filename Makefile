# Scout: two commands on a fresh machine.
#   make run    venv + install + embedded PostgreSQL and broker + API, worker, scheduler, simulated traffic
#   make test   venv + install + Apache Kafka jars + promtool + chromium + the whole test suite (what CI
#               runs) except the longest fault scenarios
#   make test-faults   every fault-injection scenario (tests/faults, docs/RELIABILITY.md)
#   make schema        rewrite sql/schema.sql from the migrations (tests/integration/test_schema.py)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DURATION ?= 0
PYTEST_ARGS ?=

.PHONY: run test test-faults lint install kafka-jars promtool chromium schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/scout up --duration $(DURATION)

kafka-jars: install
	$(BIN)/python -m cli.services.kafka_jars

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# sql/schema.sql: the schema every migration builds, dumped from an empty embedded PostgreSQL
schema: install
	$(BIN)/python -m cli.schema_dump

# promtool and the prometheus server from Debian's package, into .cache/promtool
promtool:
	bash scripts/fetch-promtool.sh

# chromium and chromium-driver from Debian's packages (with the libraries this machine lacks), into
# .cache/chromium: the status page's browser tests (tests/e2e/test_status_page_browser.py)
chromium:
	bash scripts/fetch-chromium.sh

test: install kafka-jars promtool chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not faults_extended" $(PYTEST_ARGS)

test-faults: install kafka-jars
	$(BIN)/python -m pytest -m "faults or faults_extended" tests/faults $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .cache .scout .pytest_cache .mypy_cache .ruff_cache

# Scout: two commands on a fresh machine.
#   make run    venv + install + embedded PostgreSQL and broker + API, worker, scheduler, simulated traffic
#   make test   venv + install + Apache Kafka jars + the whole test suite (what CI runs)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DURATION ?= 0
PYTEST_ARGS ?=

.PHONY: run test lint install kafka-jars promtool clean

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
	$(BIN)/python -m scout.services.kafka_jars

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# promtool and the prometheus server from Debian's package, into .cache/promtool
promtool:
	bash scripts/fetch-promtool.sh

test: install kafka-jars promtool
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .cache .scout .pytest_cache .mypy_cache .ruff_cache

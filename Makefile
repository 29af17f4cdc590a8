# Every target creates its own virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install services demo test lint format clean bench chaos cluster-up cluster-down cluster-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

services:
	@bash scripts/ensure-services.sh

## Run the example pipeline (dataset ingestion): on the embedded in-memory backends, or on
## RabbitMQ and Redis when ORCH_SERV_AMQP_URL and ORCH_SERV_REDIS_URL are set.
demo: $(STAMP)
	$(PY) -m services_examples.demo

## The whole test suite (unit, integration with real RabbitMQ/Redis and processes, e2e), with
## branch coverage of orch_serv, child processes included: a summary per file, coverage.xml,
## and a failure under the floor (`fail_under` in pyproject.toml).
test: $(STAMP) services
	$(PY) -m pytest -q --cov --cov-report=term --cov-report=xml

## Benchmarks (figures go to bench/results/; never part of the test suite).
bench: $(STAMP) services
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench.run
	$(PY) -m bench.timer_lag

## The chaos suite (docs/reliability.md): 10,000 runs of a 3-step flow across 2 orchestrator and
## 2 service processes while processes are SIGKILLed and broker connections cut; exits 1 when a
## run is lost or a step advanced twice. Options: CHAOS_ARGS="--runs 1000 --seed 1".
chaos: $(STAMP) services
	$(PY) -m chaos $(CHAOS_ARGS)

## A local Redis Cluster (7101-7106) and RabbitMQ cluster (AMQP 5701-5703) beside the default
## servers (docs/operations.md, "A local cluster for tests").
cluster-up:
	bash scripts/cluster.sh start

cluster-down:
	bash scripts/cluster.sh stop

## The tests of the local clusters (they start the clusters, and stop them unless they were
## already up): the harness itself, and runs on the RabbitMQ cluster with quorum queues.
cluster-test: $(STAMP)
	$(PY) -m pytest -q -m cluster tests/cluster

## ruff, then mypy --strict on orch_serv, tests and chaos (the files of [tool.mypy]).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info .coverage .coverage.* coverage.xml

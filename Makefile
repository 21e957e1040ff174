# Scorehouse: every command sets itself up first (Python 3.11 + pip; packages from the lock file).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
## pytest in TEST_WORKERS processes (pytest-xdist), each running whole test files: a file's
## module fixtures are built once, and tests/conftest.py starts the long files first
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: setup demo test test-fast test-deep test-scale services services-stop lint bench bench-scale ui clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

## (a) the whole pipeline on embedded defaults (state in .scorehouse/)
demo: setup
	$(BIN)/scorehouse demo

## (b) lint, format check, type check, the embedded suite, then the scale stage (services)
test: lint
	$(BIN)/pytest $(PARALLEL) -m "not scale and not deep"
	$(MAKE) test-scale

## the long tier: the kill -9 suite's further seeds (four more random kill points per phase)
## and the whole churn and credit demos as tests (about 40 minutes on two cores, 11-14 more for credit)
test-deep: setup
	$(BIN)/pytest $(PARALLEL) -m deep

## the scale profile's tests on local PostgreSQL, Redis and S3 (started and stopped around them)
test-scale: setup
	bash .ci/services/scale-stage.sh

## PostgreSQL, Redis and an S3 emulator on 127.0.0.1; the profile in .scorehouse/services.env
services: setup
	bash .ci/services/services.sh start

services-stop:
	bash .ci/services/services.sh stop

## the quick loop while working: everything but the tests marked slow (end-to-end runs)
test-fast: lint
	$(BIN)/pytest $(PARALLEL) -m "not slow and not scale and not deep" -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_lakehouse.py

## capacity figures of docs/scale.md: per-core throughput, fan-out overhead, Redis vs SQLite
bench-scale: setup
	$(BIN)/python benchmarks/bench_scale.py

ui: setup
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.scorehouse/dagster} $(BIN)/python -c \
	  "from orchestration.runs import dagster_home; dagster_home()"
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.scorehouse/dagster} $(BIN)/dagster dev -w workspace.yaml

## Regenerate the lock file after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra scale --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf .scorehouse

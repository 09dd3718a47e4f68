# crimelake: `make demo` runs the whole pipeline on simulated data, `make test` runs the tests.
# Needs only Python 3.11 (python3); uv is installed into .tools/ when it is not on PATH.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := $(CURDIR)/.tools
VENV := $(CURDIR)/.venv
# The Spark engine (dbt-spark, the Spark Connect client, Sail) lives in an environment of its own: with the Spark
# Connect client importable, libraries that probe for Spark (great-expectations, MLflow) can end a process.
SPARK_VENV := $(CURDIR)/.venv-spark
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)

export CRIMELAKE_HOME ?= $(CURDIR)/var
export UV_CACHE_DIR ?= $(TOOLS)/uv-cache
export UV_PROJECT_ENVIRONMENT := $(VENV)
export DAGSTER_HOME := $(CRIMELAKE_HOME)/dagster
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

CRIMELAKE := $(VENV)/bin/crimelake

.PHONY: install demo test map browser ui mlflow bench bench-national lint docs seeds clean help

help:
	@echo "make demo   generate demo data and run the whole pipeline into $(CRIMELAKE_HOME)"
	@echo "make test   run the test suite"
	@echo "make map    serve the crime map and its API on the same home (http://127.0.0.1:8080)"
	@echo "make ui     open the Dagster UI on the same home (http://127.0.0.1:3000)"
	@echo "make mlflow open the MLflow UI on the same home (http://127.0.0.1:5000)"
	@echo "make bench  run the benchmarks"
	@echo "make bench-national  the pipeline at national scale (44 forces, 36 months), per stage; bench-results/national.json"
	@echo "make docs   build the dbt docs into $(CRIMELAKE_HOME)/dbt-docs (after make demo)"
	@echo "make seeds  regenerate the dbt seeds from the data contracts"
	@echo "make lint   ruff"

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --no-cache-dir --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

$(SPARK_VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(SPARK_VENV) $(UV) sync --frozen --extra spark --python $(PYTHON)
	@touch $@

# The dbt manifest is built at install time, never when the Dagster definitions are imported.
dbt_project/target/manifest.json: $(VENV)/.synced $(shell find dbt_project/models dbt_project/macros dbt_project/tests dbt_project/seeds -type f 2>/dev/null) dbt_project/dbt_project.yml
	cd dbt_project && $(VENV)/bin/dbt parse --quiet --profiles-dir .

# The spark environment (dbt-spark, Sail) lets the tests build the dbt project on Spark as well as DuckDB.
install: $(VENV)/.synced $(SPARK_VENV)/.synced dbt_project/target/manifest.json

demo: install
	$(CRIMELAKE) demo

# Tests marked xdist_group (the map's API and browser tests share one built lake) stay on one worker.
test: install
	$(VENV)/bin/pytest -n 2 --dist loadgroup

map: install
	$(CRIMELAKE) serve

# Debian's Chromium and a font for the browser test (a browser a tool downloads itself cannot be fetched here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core; }

mlflow: install
	$(CRIMELAKE) mlflow

ui: install
	$(CRIMELAKE) ui

bench: install
	$(VENV)/bin/python -m benchmarks.run

bench-national: install
	$(VENV)/bin/python -m benchmarks.national

docs: install
	cd dbt_project && $(VENV)/bin/dbt docs generate --profiles-dir . --target-path $(CRIMELAKE_HOME)/dbt-docs --static
	@echo "dbt docs: open $(CRIMELAKE_HOME)/dbt-docs/static_index.html in a browser"

seeds: install
	$(VENV)/bin/python -m data_contracts.seeds

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(CRIMELAKE_HOME) .pytest_cache

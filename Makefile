# Every target bootstraps .venv from pyproject.toml and the pinned versions in
# conf/requirements.lock; a second run reuses it unless either file changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := conf/requirements.lock
UI_PORT ?= 5000
SERVE_PORT ?= 5001
MODEL ?=
ARGS ?=

STORE := $(CURDIR)/mlruns
TRACKING_URI ?= sqlite:///$(STORE)/mlflow.db

.DEFAULT_GOAL := help
.PHONY: help venv tune worker retrain rollback predict serve ui dashboard server postgres test bench lint format lock clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create or update .venv with the locked versions

tune: $(STAMP) ## Run the default tuning job (extra overrides: ARGS="search.n_trials=200 data=diabetes")
	$(PY) -m pipeline $(ARGS)

worker: $(STAMP) ## Join the shared study on PostgreSQL and run its trials (ARGS as for make tune)
	$(PY) -m pipeline job=worker search=distributed tracking=server $(ARGS)

EXPERIMENT ?= nightly
retrain: $(STAMP) ## Scheduled retraining with conf/experiment/nightly.yaml (EXPERIMENT=... for another)
	$(PY) -m pipeline experiment=$(EXPERIMENT) $(ARGS)

rollback: $(STAMP) ## Move the champion back a version: make rollback MODEL=name REASON="why"
	$(PY) -m pipeline job=rollback $(if $(MODEL),registry.model_name=$(MODEL)) 'registry.reason=$${oc.env:REASON,""}' $(ARGS)

predict: $(STAMP) ## Score a table with the champion: make predict INPUT=in.csv OUTPUT=out.csv [MODEL=name]
	$(PY) -m pipeline job=predict predict.input=$(INPUT) predict.output=$(OUTPUT) $(if $(MODEL),registry.model_name=$(MODEL)) $(ARGS)

serve: $(STAMP) ## Serve the champion over HTTP at 127.0.0.1:5001 (MODEL=name), once its files check out
	$(PY) -m pipeline job=verify tracking.uri=$(TRACKING_URI) registry.model_name=$(or $(MODEL),seed_regression)
	@echo "POST http://127.0.0.1:$(SERVE_PORT)/invocations  (Ctrl-C to stop)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MLFLOW_TRACKING_URI=$(TRACKING_URI) $(VENV)/bin/mlflow models serve \
		-m models:/$(or $(MODEL),seed_regression)@champion --env-manager local --host 127.0.0.1 --port $(SERVE_PORT)

ui: $(STAMP) ## Start the MLflow UI on the embedded store at 127.0.0.1:5000 (UI_PORT=... to change)
	@echo "MLflow UI: http://127.0.0.1:$(UI_PORT)/#/experiments?workflowType=machine_learning  (ready in about 10 s; Ctrl-C to stop)"
	PYTHONWARNINGS='ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated:UserWarning' \
		$(VENV)/bin/mlflow ui --backend-store-uri $(TRACKING_URI) \
		--host 127.0.0.1 --port $(UI_PORT) --workers 1

DASHBOARD_PORT ?= 8080
OPTUNA_STORAGE ?= sqlite:///$(STORE)/optuna.db
dashboard: $(STAMP) ## Start optuna-dashboard on the study storage at 127.0.0.1:8080
	@echo "Optuna dashboard: http://127.0.0.1:$(DASHBOARD_PORT)  (Ctrl-C to stop)"
	$(VENV)/bin/optuna-dashboard $(OPTUNA_STORAGE) --host 127.0.0.1 --port $(DASHBOARD_PORT)

# Scale-out (README, "Scale-out"): one PostgreSQL for the study and the MLflow store.
# No password here: psycopg and psql read PGPASSWORD (or ~/.pgpass) from the environment.
PGHOST ?= 127.0.0.1
PGPORT ?= 5432
PGUSER ?= regtune
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5000
ALLOWED_HOSTS ?= localhost,127.0.0.1,localhost:$(SERVER_PORT),127.0.0.1:$(SERVER_PORT)
BACKEND_STORE_URI ?= postgresql+psycopg://$(PGUSER)@$(PGHOST):$(PGPORT)/regtune_mlflow
server: $(STAMP) ## MLflow tracking server on PostgreSQL at 127.0.0.1:5000, artifacts in mlruns/server-artifacts
	@echo "MLflow tracking server: http://$(SERVER_HOST):$(SERVER_PORT)  (Ctrl-C to stop)"
	PYTHONWARNINGS=ignore::DeprecationWarning $(VENV)/bin/mlflow server \
		--backend-store-uri $(BACKEND_STORE_URI) \
		--artifacts-destination $(STORE)/server-artifacts --serve-artifacts \
		--host $(SERVER_HOST) --port $(SERVER_PORT) --allowed-hosts '$(ALLOWED_HOSTS)'

postgres: ## Start the local PostgreSQL (as root) with role regtune (password from PGPASSWORD) and its databases
	@test -n "$$PGPASSWORD" || { echo "export PGPASSWORD=<a password for role $(PGUSER)> first"; exit 2; }
	@test "$$(id -u)" = 0 || { echo "run as root, or see README (Scale-out) for initdb/pg_ctl"; exit 2; }
	pg_ctlcluster $$(pg_lsclusters -h | awk 'NR==1 {print $$1, $$2}') start 2>/dev/null || true
	@printf '%s\n' '\getenv pw PGPASSWORD' \
		"SELECT 'CREATE ROLE $(PGUSER)' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$(PGUSER)') \gexec" \
		"ALTER ROLE $(PGUSER) LOGIN PASSWORD :'pw';" \
		"SELECT 'CREATE DATABASE regtune_optuna OWNER $(PGUSER)' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'regtune_optuna') \gexec" \
		"SELECT 'CREATE DATABASE regtune_mlflow OWNER $(PGUSER)' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'regtune_mlflow') \gexec" \
		| runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres
	@echo "PostgreSQL on $(PGHOST):$(PGPORT): role $(PGUSER), databases regtune_optuna and regtune_mlflow"

test: $(STAMP) ## Run the test suite
	$(PY) -m pytest

BENCH_ARGS ?=
WORKER_BENCH_ARGS ?=
E2E_BENCH_ARGS ?=
LOGGING_BENCH_ARGS ?=
QUALITY_BENCH_ARGS ?=
bench: $(STAMP) ## Benchmarks: search vs scikit-learn's CV tuners on D1-D4, then 1 vs 2 workers on PostgreSQL, the whole command vs an ElasticNetCV process, trial logging vs a bare MlflowClient loop, holdout quality vs the CV tuners on 10 real tables (not in make test)
	$(PY) bench/search.py $(BENCH_ARGS)
	$(PY) bench/workers.py $(WORKER_BENCH_ARGS)
	$(PY) bench/end_to_end.py $(E2E_BENCH_ARGS)
	$(PY) bench/logging_cost.py $(LOGGING_BENCH_ARGS)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[dev,bench]'
	$(PY) bench/quality.py $(QUALITY_BENCH_ARGS)

lint: $(STAMP) ## Check style with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Reformat the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lock: ## Re-resolve the newest allowed versions into conf/requirements.lock
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable --disable-pip-version-check > $(LOCK)
	rm -rf .venv-lock

clean: ## Remove the virtualenv, caches and Hydra outputs (keeps the stores in mlruns/)
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs multirun *.egg-info

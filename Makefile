# The two README commands:
#   make test  - create .venv, install the project with its dev dependency group, run `make lint`,
#                then the whole suite
#   make lint  - ruff check, ruff format --check and mypy (the same checks as .pre-commit-config.yaml)
#   make demo  - sandbox -> `meltano run tap-capsule-csv target-csv` -> CSV files under demo-output/,
#                and the same into demo-output/warehouse.duckdb with one SQL query's result
#   make sql   - only the DuckDB part of the demo (or SQL_ENV=prod: your account)
#   make sandbox       - the demo's sandbox in the foreground, for the recipes in docs/recipes.md
#   make docs-settings - rewrite docs/settings.md's tables from `--about`
#   make docs-tables   - rerun the benchmarks and rewrite the cost and benchmark tables in docs/
#
# Meltano lives in its own virtualenv (.venv-meltano): its pins (sqlalchemy<2.1, click<8.6, pip>=25)
# differ from what the project's venv resolves next to singer-sdk 0.54, and the tests should run
# against the project's own dependency set. Meltano in turn installs every plugin into its own venv
# under .meltano/ (with uv), tap-capsule and target-capsule from this checkout (`pip_url: -e .`).

PYTHON ?= python3
VENV := .venv
MELTANO_VENV := .venv-meltano
MELTANO_VERSION := 4.4.1
PYTEST_ARGS ?=

# The pipeline tests find meltano through MELTANO_BIN.
export MELTANO_BIN := $(CURDIR)/$(MELTANO_VENV)/bin/meltano

.PHONY: test lint demo demo-clean sql install meltano clean sandbox docs-settings docs-tables

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade 'pip>=25.1'  # --group needs pip 25.1
	$(VENV)/bin/python -m pip install --quiet -e . --group dev
	touch $@

meltano: $(MELTANO_VENV)/.installed

$(MELTANO_VENV)/.installed:
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	@echo '*' > $(MELTANO_VENV)/.gitignore
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MELTANO_VENV)/bin/python -m pip install --quiet 'meltano==$(MELTANO_VERSION)'
	touch $@

# Paths and settings come from pyproject.toml ([tool.ruff], [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/mypy

test: install meltano lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Runs twice in a row to show the incremental second run: `make demo demo`, or just run it again.
demo: install meltano
	bash .ci/demo

# SQL on an embedded copy (DuckDB, one local file, no server): the `capsule-to-duckdb` job, then
# examples/sql/open_opportunities_by_owner.sql. By default from the sandbox into
# demo-output/warehouse.duckdb; `make sql SQL_ENV=prod` loads your account (TAP_CAPSULE_ACCESS_TOKEN)
# into output/warehouse.duckdb. Each run after the first is incremental.
SQL_ENV ?= demo
SQL_QUERY ?= examples/sql/open_opportunities_by_owner.sql
sql: install meltano
ifeq ($(SQL_ENV),demo)
	DEMO_SQL_ONLY=1 bash .ci/demo
else
	mkdir -p output
	$(MELTANO_VENV)/bin/meltano --environment=$(SQL_ENV) install --plugin-type extractor tap-capsule-sql
	$(MELTANO_VENV)/bin/meltano --environment=$(SQL_ENV) install --plugin-type loader target-capsule-duckdb
	$(MELTANO_VENV)/bin/meltano --environment=$(SQL_ENV) run capsule-to-duckdb
	$(VENV)/bin/python examples/sql/show.py output/warehouse.duckdb $(SQL_QUERY)
endif

# Forget the demo's Meltano state and output, so the next `make demo` is a full extract again.
demo-clean:
	rm -rf demo-output .meltano/demo.db

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano demo-output output .pytest_cache

# The Capsule sandbox in the foreground, as `make demo` starts it (port 8765, token demo-token,
# 200 parties, seed 1): what the examples/*.sandbox.json files and the `demo` environment point at.
# Ctrl-C stops it. `make sandbox SANDBOX_PORT=8766` moves it (then edit api_url to match).
SANDBOX_PORT ?= 8765
sandbox: install
	@echo "Capsule sandbox: token demo-token, 200 parties, seed 1; Ctrl-C stops it" >&2
	@$(VENV)/bin/capsule sandbox --port $(SANDBOX_PORT) --token demo-token --scale 200 --seed 1

# Rewrite the settings tables of docs/settings.md from `tap-capsule --about` and
# `target-capsule --about` (tests/test_docs.py fails when they disagree).
docs-settings: install
	$(VENV)/bin/python docs/generate_settings.py

# Rerun the scripts under benchmarks/ and rewrite the tables between their `BEGIN generated`
# markers in docs/*.md (tests/test_docs_tables.py fails when a page and its script disagree).
# All of them take several minutes on 2 cores; `make docs-tables TABLES="backup_cost
# target_requests"` reruns the named scripts only.
TABLES ?=
docs-tables: install
	$(VENV)/bin/python docs/generate_tables.py $(TABLES)

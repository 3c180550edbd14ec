# Hookline's developer commands. Needs only python3 (3.11+), node/npm and make.
#   make run   - everything on this machine (embedded SQLite + Redis), until Ctrl-C
#   make test  - the whole suite (PYTEST_ARGS="-x -k name" passes arguments to pytest)

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
HTMX := portal/static/vendor/htmx.min.js
PYTEST_ARGS ?=

.PHONY: venv assets run test lint clean bench soak

venv: $(VENV_STAMP)

# Reinstall only when pyproject.toml changed since the last install.
$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Hookline needs Python 3.11 or newer; run: make PYTHON=python3.11 ...")'
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --disable-pip-version-check --quiet -e ".[dev,postgres]"
	touch $@

assets: $(HTMX)

# Front-end files come from npm (pinned in package-lock.json), never from the repository.
$(HTMX): package-lock.json package.json
	npm ci --no-audit --no-fund
	mkdir -p $(dir $@)
	cp node_modules/htmx.org/dist/htmx.min.js $@

run: venv assets
	$(VENV_PYTHON) -m devtools.devrun

test: venv assets
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Hookline beside the raw HTTP ceiling; rewrites docs/performance.md (BENCH_QUICK=1: smoke run).
bench: venv
	$(VENV_PYTHON) -m pip install --disable-pip-version-check --quiet "py-spy>=0.3"
	$(VENV_PYTHON) -m tests.perf.bench

# 20,000 deliveries under worker SIGKILLs, a rolling restart and Redis restarts, at most 15
# minutes; rewrites the figures in docs/reliability.md (SOAK_QUICK=1: 2,000 deliveries, figures
# printed only; SOAK_DATABASE=postgresql: on a PostgreSQL server of its own, also restarted).
soak: venv
	$(VENV_PYTHON) -m tests.soak.run

# Keeps instance/ (the development database, keys and Redis data); delete it by hand to start over.
clean:
	rm -rf $(VENV) node_modules portal/static/vendor build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

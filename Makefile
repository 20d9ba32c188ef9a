# Samverkan — the two commands a fresh machine needs: `make demo` and `make test`.
# With no DATABASE_URL both use the embedded PostgreSQL in .pgdata/.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: demo test install messages lint bench bench-national clean-db help oidc-provider

help:
	@echo "make demo   – install, migrate, load demo data and serve on http://$(HOST):$(PORT)"
	@echo "make test   – install and run the whole test suite"
	@echo "make bench  – run the benchmarks (benchmarks/results.json)"
	@echo "make bench-national [SCALE=1] – the national-size data set"
	@echo "make lint   – ruff and the import contracts (import-linter)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Compile the translation catalogues (.po -> .mo) with Babel: no GNU gettext needed.
messages: install
	for dir in locale locale_vendor; do \
	  $(VENV)/bin/pybabel compile --domain django --directory $$dir --statistics || exit 1; \
	done

demo: messages
	$(PY) manage.py keys generate --if-missing
	$(PY) manage.py ensure_keystore
	$(PY) manage.py migrate --no-input
	$(PY) manage.py migrate --no-input --database keystore
	$(PY) manage.py seed_demo
	$(PY) manage.py audit checkpoint
	@echo "Samverkan serves on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	$(PY) manage.py runserver $(HOST):$(PORT)

# The tests' OpenID Connect provider (npm oidc-provider, pinned by its lock file; ADR 0018).
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund

oidc-provider: tests/oidc/node_modules/.package-lock.json

# The import contracts (pyproject.toml [tool.importlinter]) first: the core never imports a programme.
# The suite runs on every core (pytest-xdist; each worker has its own test databases);
# TEST_WORKERS=0 runs it in one process. Work stealing: a worker that runs out of tests
# takes the rest of another's queue, so no core idles while the other ends on the slow
# (committing, browser) modules (docs/adr/0034-fast-suite.md).
TEST_WORKERS ?= auto
test: messages oidc-provider
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: messages
	$(PY) -m benchmarks

# The national data set (1 M persons, 300 000 cases, 50 M log events; README "Development").
SCALE ?= 1
bench-national: messages
	$(PY) -m benchmarks bench_national --scale $(SCALE)

clean-db:
	rm -rf .pgdata

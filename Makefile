# Two commands matter: `make run` (set up and start the shop) and `make test`.
# Everything else is a step they use, or a benchmark.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deps-installed
ARGS   ?=

.PHONY: run test setup system-deps services database migrate lint format bench bench-reconcile chaos clean

run: setup migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Flash Shop is starting on http://127.0.0.1:$${PORT:-8000}/  (admin: /admin/, API docs: /api/docs/)"
	@echo "  Log in with the demo accounts printed above. Ctrl-C stops web, worker and beat."
	@echo ""
	DEBUG=$${DEBUG:-1} $(BIN)/honcho start --port $${PORT:-8000}

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest $(ARGS)

setup: $(STAMP) services database

system-deps:
	@scripts/system_deps.sh

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python system-deps
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

services:
	@scripts/services.sh

database: $(STAMP) services
	@$(BIN)/python manage.py ensure_database

migrate: database
	$(BIN)/python manage.py migrate --noinput

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

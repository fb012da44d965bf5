# Two commands matter: `make run` (set up and start the shop) and `make test`.
# Everything else is a step they use, or a benchmark.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deps-installed
ARGS   ?=

.PHONY: run test test-cluster cluster-test test-replica redis-cluster-start redis-cluster-stop setup system-deps services database migrate lint format bench bench-reconcile bench-locks chaos clean

# The sale state lives in the project's own Redis with AOF on port 6380 (scripts/sale_redis.sh);
# set REDIS_URL to use another one.
run: export REDIS_URL := $(or $(REDIS_URL),redis://127.0.0.1:6380/0)
run: export SITE_URL := $(or $(SITE_URL),http://127.0.0.1:$(or $(PORT),8000))
# Production-like by default: DEBUG off (the shop's own 404/500 pages, static files from
# whitenoise); DEBUG=1 make run for Django's debug pages while developing. Celery logs
# warnings only (a beat job runs every 5 s); VERBOSE=1 make run for INFO.
run: export DEBUG := $(or $(DEBUG),0)
run: export CELERY_LOGLEVEL := $(or $(CELERY_LOGLEVEL),$(if $(VERBOSE),INFO,WARNING))
# Readable log lines on the terminal; production's default is one JSON object a line
# (config/logs.py): LOG_FORMAT=json make run to see those.
run: export LOG_FORMAT := $(or $(LOG_FORMAT),console)
# Every process (web workers, Celery, the order writer) writes its metrics here and
# /metrics adds them up (config/metrics.py); emptied at each start, as prometheus_client
# needs, and given to the four processes only (the set-up commands before them count nothing).
METRICS_DIR := $(or $(PROMETHEUS_MULTIPROC_DIR),$(CURDIR)/var/prometheus)
run: setup migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	@rm -rf "$(METRICS_DIR)" && mkdir -p "$(METRICS_DIR)"
	@if [ -n "$$CELERY_UID" ]; then chown "$$CELERY_UID" "$(METRICS_DIR)"; \
	elif [ "$$(id -u)" = 0 ]; then echo "  Running as root, so Celery warns about it: run make run as an ordinary user, or CELERY_UID=<user> make run (that user must be able to read this checkout and its Python)."; fi
	@echo ""
	@echo "  Flash Shop is starting on http://127.0.0.1:$${PORT:-8000}/  (admin: /admin/, API docs: /api/docs/)"
	@echo "  Log in with the demo accounts printed above. Ctrl-C stops web, worker, beat and the order writer."
	@echo "  DEBUG=$$DEBUG (DEBUG=1 make run for Django's debug pages); VERBOSE=1 make run for Celery's INFO log;"
	@echo "  LOG_FORMAT=$$LOG_FORMAT (LOG_FORMAT=json make run for production's JSON lines)."
	@echo ""
	PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" $(BIN)/honcho start --port $${PORT:-8000}

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest $(ARGS)

# The whole suite against a Redis Cluster of its own (docs/scale-out.md): 3 masters and 3
# replicas on 127.0.0.1:7101-7106 (REDIS_CLUSTER_PORTS), data in var/redis-cluster/,
# REDIS_CLUSTER_NODES set for pytest, database test_flashshop_cluster (TEST_DATABASE_NAME);
# the nodes are stopped by pid however the run ends. ARGS go to pytest as for make test.
test-cluster: setup
	$(BIN)/ruff check .
	scripts/test_cluster.sh $(ARGS)

# The shop on several hosts of one machine (docs/scale-out.md, "Several hosts"): network
# namespaces for 3 web hosts and 2 writer hosts, a 3+3 Redis Cluster on their bridge, one
# bucketed sale bought by a load generator per web host while a Redis master is SIGKILLed,
# a web host is cut off and a writer is SIGSTOPped; then I1-I5, lost acknowledgements and
# `manage.py reconcile`. Needs root; about a minute a run. ARGS="--runs 3"; results in
# chaos/results/multihost-latest.json.
cluster-test: migrate
	$(BIN)/python chaos/multihost/run.py $(ARGS)

# The catalogue's read replica on real servers (docs/scale-out.md, "The database"): a MariaDB
# primary and a GTID replica of their own on 127.0.0.1:3316 and :3317 (scripts/db_replica.sh,
# data in var/db-replica/), DATABASE_URL and DATABASE_REPLICA_URL set for pytest, Redis db 12;
# runs core/tests/test_db_replica.py, then stops both servers by pid however it ends.
# ARGS go to pytest after that module (ARGS="-k paused").
test-replica: setup
	$(BIN)/ruff check .
	scripts/test_replica.sh $(ARGS)

# A cluster on loopback to develop against: REDIS_CLUSTER_NODES=$$(scripts/redis_cluster.sh nodes) make run
redis-cluster-start:
	@scripts/redis_cluster.sh start
	@echo "REDIS_CLUSTER_NODES=$$(scripts/redis_cluster.sh nodes)"

redis-cluster-stop:
	@scripts/redis_cluster.sh stop

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
	$(BIN)/lint-imports

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

# The purchase path against the ceiling and the DB-only strategies (docs/benchmarks.md).
# Starts its own redis-server, gunicorn and Celery on loopback and uses the database
# flashshop_bench; stops all of them at the end. ARGS=--quick: a short run (< 1 min);
# ARGS=--profile: queries, Redis round trips and time per purchase, in one process.
bench: setup
	$(BIN)/python bench/run.py $(ARGS)

# Times a full reconciliation run over 1,000,000 flash-sale orders, in a database of its
# own (flashshop_bench_reconcile) and Redis db 13; ARGS="--fresh" rebuilds the data.
# The figure goes to docs/benchmarks.md (Reconciliation).
bench-reconcile: setup
	$(BIN)/python bench/reconcile_bench.py $(ARGS)

# Every lock backend on real servers: uncontended latency, hand-overs per second with 8
# processes, recovery after the holder is killed (docs/locks.md, "Measured"). Starts its
# own redis-servers, ZooKeeper and etcd on loopback; ARGS="--quick" or "--only etcd".
bench-locks: migrate
	$(BIN)/python bench/lock_bench.py $(ARGS)

# Faults injected during a live sale, invariants checked after each (docs/reliability.md).
# Its own redis-server and database (flashshop_chaos); ARGS="--runs N --only NAME --seed S".
chaos: setup
	$(BIN)/python chaos/run.py $(ARGS)

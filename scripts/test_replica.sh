#!/usr/bin/env bash
# `make test-replica`: the read replica's tests (core/tests/test_db_replica.py) against a
# MariaDB primary and replica of their own (scripts/db_replica.sh, 127.0.0.1:3316 and
# :3317). pytest-django creates its test database on the primary and replication carries
# it to the replica; Redis db 12 (TEST_REDIS_URL), so it can run beside `make test`. The
# two servers are stopped by their pids however pytest ends.
# Arguments go to pytest after that module: scripts/test_replica.sh -k paused. The rest of
# the suite declares only the default database and is meant for `make test`, without a replica.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/db_replica.sh stop >/dev/null' EXIT
scripts/db_replica.sh start
export DATABASE_URL=mysql://root@127.0.0.1:${DB_PRIMARY_PORT:-3316}/flashshop_replica
export DATABASE_REPLICA_URL=mysql://root@127.0.0.1:${DB_REPLICA_PORT:-3317}/flashshop_replica
export TEST_DATABASE_NAME=test_flashshop_replica
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/12}
echo "DATABASE_URL=$DATABASE_URL DATABASE_REPLICA_URL=$DATABASE_REPLICA_URL TEST_REDIS_URL=$TEST_REDIS_URL"
.venv/bin/pytest core/tests/test_db_replica.py "$@"

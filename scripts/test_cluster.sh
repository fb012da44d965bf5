#!/usr/bin/env bash
# `make test-cluster`: the test suite against a Redis Cluster of its own (scripts/redis_cluster.sh).
# Starts 3 masters + 3 replicas on loopback, runs pytest with REDIS_CLUSTER_NODES set and
# its own test database (TEST_DATABASE_NAME, test_flashshop_cluster by default, so it can
# run beside `make test`), and stops the nodes by their pids however pytest ends.
# Arguments go to pytest: scripts/test_cluster.sh -k cluster -x
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/redis_cluster.sh stop >/dev/null' EXIT
scripts/redis_cluster.sh start
export REDIS_CLUSTER_NODES=${REDIS_CLUSTER_NODES:-$(scripts/redis_cluster.sh nodes)}
export TEST_DATABASE_NAME=${TEST_DATABASE_NAME:-test_flashshop_cluster}
echo "REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES TEST_DATABASE_NAME=$TEST_DATABASE_NAME"
.venv/bin/pytest "$@"

#!/usr/bin/env bash
# A Redis Cluster on loopback for `make test-cluster`: 3 masters and 3 replicas on
# REDIS_CLUSTER_PORTS (7101-7106 by default; each node needs its bus port, port + 10000,
# free too), data under var/redis-cluster/ (git-ignored), nothing kept on disk (no RDB,
# no AOF: the suite flushes it anyway). Every start is a fresh cluster. REDIS_CLUSTER_HOST
# (127.0.0.1 by default) is the address the nodes bind and announce: `make cluster-test`
# gives the address of its bridge so that hosts in network namespaces reach them.
#   scripts/redis_cluster.sh start   start the six nodes, create the cluster, wait until it serves
#   scripts/redis_cluster.sh stop    stop the nodes this script started (by the pids in their pid files)
#   scripts/redis_cluster.sh nodes   print REDIS_CLUSTER_NODES for these ports
#   scripts/redis_cluster.sh revive PORT   start a node that was killed again, with its cluster config
set -euo pipefail
cd "$(dirname "$0")/.."
ports=(${REDIS_CLUSTER_PORTS:-7101 7102 7103 7104 7105 7106})
host=${REDIS_CLUSTER_HOST:-127.0.0.1}
dir=$PWD/var/redis-cluster
# Long enough that a test pausing a master for a second or two does not trigger a failover.
# cluster-require-full-coverage no (below): while one master's slots have no node, the
# other masters go on serving theirs (Redis's default stops the whole cluster), so a dead
# master stops only the sales and buckets it held (docs/scale-out.md).
node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT_MS:-5000}

nodes() { local IFS=,; echo "${ports[*]/#/$host:}"; }

stop() {
  for port in "${ports[@]}"; do
    pidfile=$dir/$port/redis.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && [ "$(ps -o comm= -p "$pid")" = redis-server ]; then  # not a reused pid
      kill -CONT "$pid" 2>/dev/null || true  # a node a test left paused must still be able to exit
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

serving() {  # every node says cluster_state:ok and lists 3 masters + 3 replicas in CLUSTER SLOTS
  for port in "${ports[@]}"; do
    [[ "$(redis-cli -h "$host" -p "$port" cluster info 2>/dev/null)" == *cluster_state:ok* ]] || return 1
    # CLUSTER SLOTS is what clients read, and it lists a replica only some time after
    # CLUSTER NODES and the replica's own link say it is there: one address line per node
    [ "$(redis-cli -h "$host" -p "$port" cluster slots 2>/dev/null | grep -cx "$host")" = 6 ] || return 1
  done
}

start_node() {
  # Off loopback Redis refuses clients that have no password (protected mode); the bridge of
  # make cluster-test carries only that test's own namespaces, so it is turned off there.
  local protected=yes
  [ "$host" = 127.0.0.1 ] || protected=no
  redis-server --port "$1" --bind "$host" --protected-mode "$protected" --daemonize yes \
    --cluster-enabled yes --cluster-config-file "$dir/$1/nodes.conf" --cluster-node-timeout "$node_timeout" \
    --cluster-require-full-coverage no \
    --save "" --appendonly no --dir "$dir/$1" \
    --pidfile "$dir/$1/redis.pid" --logfile "$dir/$1/redis.log"
}

# A node that was killed comes back with its nodes.conf: it rejoins the cluster it knew, as
# a replica of whichever node took its slots over (with no data: nothing is kept on disk).
revive() {
  local port=$1
  [ -f "$dir/$port/nodes.conf" ] || { echo "no node of this cluster on port $port" >&2; exit 2; }
  start_node "$port"
  for _ in $(seq 1 50); do redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "the node on port $port did not answer within 5 s; see $dir/$port/redis.log" >&2
  exit 1
}

start() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis-server and redis-cli are needed: sudo apt-get install redis-server (Redis 7 or later)" >&2
    exit 1
  fi
  if [ "${#ports[@]}" -ne 6 ]; then
    echo "REDIS_CLUSTER_PORTS must name 6 ports (3 masters, 3 replicas)" >&2
    exit 2
  fi
  stop  # a node left over from an interrupted run of this script
  for port in "${ports[@]}"; do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
      echo "port $port is taken by a process this script did not start; set REDIS_CLUSTER_PORTS" >&2
      exit 1
    fi
    rm -rf "${dir:?}/$port"
    mkdir -p "$dir/$port"
    start_node "$port"
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create $(printf "$host:%s " "${ports[@]}") --cluster-replicas 1 --cluster-yes \
    >"$dir/create.log" 2>&1 || { echo "redis-cli --cluster create failed; see $dir/create.log" >&2; stop; exit 1; }
  for _ in $(seq 1 300); do
    if serving; then
      echo "Redis Cluster: 3 masters + 3 replicas on $host:${ports[0]}-${ports[5]}"
      return 0
    fi
    sleep 0.1
  done
  echo "the cluster did not reach cluster_state:ok within 30 s; see $dir/*/redis.log" >&2
  stop
  exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "Redis Cluster stopped" ;;
  nodes) nodes ;;
  revive) revive "${2:?usage: $0 revive PORT}" ;;
  *) echo "usage: $0 start|stop|nodes|revive PORT" >&2; exit 2 ;;
esac

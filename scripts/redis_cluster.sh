#!/usr/bin/env bash
# A Redis Cluster on loopback for `make test-cluster`: 3 masters and 3 replicas on
# REDIS_CLUSTER_PORTS (7101-7106 by default; each node needs its bus port, port + 10000,
# free too), data under var/redis-cluster/ (git-ignored), nothing kept on disk (no RDB,
# no AOF: the suite flushes it anyway). Every start is a fresh cluster.
#   scripts/redis_cluster.sh start   start the six nodes, create the cluster, wait until it serves
#   scripts/redis_cluster.sh stop    stop the nodes this script started (by the pids in their pid files)
#   scripts/redis_cluster.sh nodes   print REDIS_CLUSTER_NODES for these ports
set -euo pipefail
cd "$(dirname "$0")/.."
ports=(${REDIS_CLUSTER_PORTS:-7101 7102 7103 7104 7105 7106})
dir=$PWD/var/redis-cluster
# Long enough that a test pausing a master for a second or two does not trigger a failover.
node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT_MS:-5000}

nodes() { local IFS=,; echo "${ports[*]/#/127.0.0.1:}"; }

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

serving() {  # every node says cluster_state:ok, and the first knows its three replicas
  for port in "${ports[@]}"; do
    [[ "$(redis-cli -p "$port" cluster info 2>/dev/null)" == *cluster_state:ok* ]] || return 1
  done
  [ "$(redis-cli -p "${ports[0]}" cluster nodes 2>/dev/null | grep -c ' slave ')" = 3 ]
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
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      echo "port $port is taken by a process this script did not start; set REDIS_CLUSTER_PORTS" >&2
      exit 1
    fi
    rm -rf "${dir:?}/$port"
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout "$node_timeout" \
      --save "" --appendonly no --dir "$dir/$port" \
      --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes \
    >"$dir/create.log" 2>&1 || { echo "redis-cli --cluster create failed; see $dir/create.log" >&2; stop; exit 1; }
  for _ in $(seq 1 300); do
    if serving; then
      echo "Redis Cluster: 3 masters + 3 replicas on 127.0.0.1:${ports[0]}-${ports[5]}"
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
  *) echo "usage: $0 start|stop|nodes" >&2; exit 2 ;;
esac

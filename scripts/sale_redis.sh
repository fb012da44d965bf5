#!/usr/bin/env bash
# The Redis `make run` keeps the shop's sale state in: the project's own redis-server with
# the append-only file on (appendfsync everysec), data under var/redis/ (git-ignored).
# The system Redis on 6379 keeps nothing on disk; with SECKILL_ACK=reserved an accepted
# purchase lives only in Redis until the order writer commits it, so a restart of a
# Redis without AOF would lose acknowledged orders (docs/architecture.md, "Durability").
# Usage: scripts/sale_redis.sh start|stop   (port: SALE_REDIS_PORT, default 6380)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${SALE_REDIS_PORT:-6380}
dir=var/redis
pidfile=$dir/redis-$port.pid
mkdir -p "$dir"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-start}" in
  start)
    if running; then
      echo "Sale Redis (AOF): answering on 127.0.0.1:$port"
      exit 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
      echo "redis-server is not installed: sudo apt-get install redis-server" >&2
      exit 1
    fi
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$PWD/$pidfile" \
      --dir "$PWD/$dir" --appendonly yes --appendfsync everysec --save "" \
      --logfile "$PWD/$dir/redis-$port.log"
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "Sale Redis (AOF): started on 127.0.0.1:$port"; exit 0; }
      sleep 0.1
    done
    echo "Sale Redis did not start; see $dir/redis-$port.log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "Sale Redis stopped"; fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac

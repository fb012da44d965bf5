#!/usr/bin/env bash
# System packages the project needs beyond Python: the MariaDB client headers that
# mysqlclient compiles against, Chromium for the browser test, wrk for the benchmark,
# libfaketime for the chaos suite's clock-skew scenario, ZooKeeper (with a JRE) and etcd for
# the lock backends of the same names (their tests start private servers from these),
# RabbitMQ for Celery, redis-cli for `make test-cluster`, iproute2 and socat for `make cluster-test`.
# Installs what is missing when run as root on Debian/Ubuntu; otherwise says what to run.
set -euo pipefail

missing=()
if ! { command -v mariadb_config || command -v mysql_config; } >/dev/null 2>&1 \
   || ! command -v pkg-config >/dev/null 2>&1; then
  missing+=(libmariadb-dev pkg-config)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
ls /usr/lib/*-linux-gnu/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing+=(faketime)
{ [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; } || missing+=(zookeeper)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)  # Celery's broker (docs/scale-out.md)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)  # make test-cluster: redis-cli --cluster create
command -v socat >/dev/null 2>&1 || missing+=(socat)  # make cluster-test: MariaDB and RabbitMQ onto its bridge
command -v ip >/dev/null 2>&1 || missing+=(iproute2)  # make cluster-test: network namespaces

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

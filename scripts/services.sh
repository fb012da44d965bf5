#!/usr/bin/env bash
# Make sure MariaDB (or MySQL) and Redis answer on the addresses in DATABASE_URL and
# REDIS_URL. Starts an installed but stopped server; names the package when one is missing.
set -euo pipefail

db_url=${DATABASE_URL:-mysql://root@127.0.0.1:3306/flashshop}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
db_hostport=$(python3 -c "from urllib.parse import urlsplit as u; x=u('$db_url'); print(x.hostname or '127.0.0.1', x.port or 3306)")
redis_hostport=$(python3 -c "from urllib.parse import urlsplit as u; x=u('$redis_url'); print(x.hostname or '127.0.0.1', x.port or 6379)")
read -r db_host db_port <<<"$db_hostport"
read -r redis_host redis_port <<<"$redis_hostport"

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_for() {  # name host port
  for _ in $(seq 1 60); do port_open "$2" "$3" && return 0; sleep 0.5; done
  echo "$1 did not come up on $2:$3 within 30 s" >&2; return 1
}

local_host() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = ::1 ]; }

if port_open "$db_host" "$db_port"; then
  echo "MariaDB/MySQL: answering on $db_host:$db_port"
elif local_host "$db_host" && command -v mariadbd >/dev/null 2>&1; then
  echo "MariaDB: not running, starting it"
  start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)"
  wait_for MariaDB "$db_host" "$db_port"
elif local_host "$db_host" && command -v mysqld >/dev/null 2>&1; then
  echo "MySQL: not running, starting it"
  start-stop-daemon --start --oknodo --background --exec "$(command -v mysqld)"
  wait_for MySQL "$db_host" "$db_port"
else
  echo "No MariaDB/MySQL on $db_host:$db_port. Install and start one:" >&2
  echo "  sudo apt-get install mariadb-server && sudo service mariadb start" >&2
  echo "or point DATABASE_URL at a server (mysql://USER:PASSWORD@HOST:PORT/NAME)." >&2
  exit 1
fi

if [ -n "${REDIS_CLUSTER_NODES:-}" ]; then
  # Redis Cluster mode (docs/scale-out.md): the shop uses these nodes, not REDIS_URL.
  answering=""
  for node in ${REDIS_CLUSTER_NODES//,/ }; do
    port_open "${node%:*}" "${node##*:}" && { answering=$node; break; }
  done
  if [ -n "$answering" ]; then
    echo "Redis Cluster: $answering answers (REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES)"
  else
    echo "No node of REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES answers; start the cluster" \
         "(scripts/redis_cluster.sh start for one on loopback) or unset the variable." >&2
    exit 1
  fi
elif local_host "$redis_host" && [ "$redis_port" = "${SALE_REDIS_PORT:-6380}" ]; then
  "$(dirname "$0")/sale_redis.sh" start  # `make run`'s own Redis, with the append-only file on
elif port_open "$redis_host" "$redis_port"; then
  echo "Redis: answering on $redis_host:$redis_port"
elif local_host "$redis_host" && command -v redis-server >/dev/null 2>&1; then
  echo "Redis: not running, starting it"
  mkdir -p /tmp/flashshop-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir /tmp/flashshop-redis --logfile /tmp/flashshop-redis/redis.log
  wait_for Redis "$redis_host" "$redis_port"
else
  echo "No Redis on $redis_host:$redis_port. Install and start one:" >&2
  echo "  sudo apt-get install redis-server && sudo service redis-server start" >&2
  echo "or point REDIS_URL at a server (redis://HOST:PORT/DB)." >&2
  exit 1
fi

# RabbitMQ is Celery's broker by default (CELERY_BROKER_URL, docs/scale-out.md); a redis://
# broker URL is checked by the Redis block above only when it is REDIS_URL's server.
broker_url=${CELERY_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//}
case "$broker_url" in
  amqp://*|amqps://*|pyamqp://*)
    broker_hostport=$(python3 -c "from urllib.parse import urlsplit as u; x=u('$broker_url'); print(x.hostname or '127.0.0.1', x.port or 5672)")
    read -r broker_host broker_port <<<"$broker_hostport"
    if port_open "$broker_host" "$broker_port"; then
      echo "RabbitMQ: answering on $broker_host:$broker_port"
    elif local_host "$broker_host" && command -v rabbitmq-server >/dev/null 2>&1; then
      echo "RabbitMQ: not running, starting it"
      if command -v rabbitmqctl >/dev/null 2>&1 && rabbitmqctl status >/dev/null 2>&1; then
        : # the node runs but does not listen yet: wait below
      else
        { command -v service >/dev/null 2>&1 && service rabbitmq-server start >/dev/null 2>&1; } \
          || rabbitmq-server -detached >/dev/null 2>&1 || true
      fi
      for _ in $(seq 1 120); do port_open "$broker_host" "$broker_port" && break; sleep 0.5; done
      port_open "$broker_host" "$broker_port" || {
        echo "RabbitMQ did not come up on $broker_host:$broker_port within 60 s (see /var/log/rabbitmq/)" >&2; exit 1; }
      echo "RabbitMQ: started on $broker_host:$broker_port"
    else
      echo "No RabbitMQ on $broker_host:$broker_port (Celery's broker). Install and start one:" >&2
      echo "  sudo apt-get install rabbitmq-server && sudo service rabbitmq-server start" >&2
      echo "or use a Redis broker: CELERY_BROKER_URL=redis://127.0.0.1:6379/1" >&2
      exit 1
    fi
    ;;
esac

# ZooKeeper and etcd serve the lock backends of the same names (docs/locks.md). The shop
# runs without them unless a job's lock is set to use one (LOCK_*_BACKEND); the test
# suite starts private servers of its own from the same packages.
zk_hostport=$(python3 -c "print(('${ZOOKEEPER_HOSTS:-127.0.0.1:2181}'.split(',')[0]).replace(':', ' '))")
etcd_hostport=$(python3 -c "from urllib.parse import urlsplit as u; x=u('${ETCD_URL:-http://127.0.0.1:2379}'); print(x.hostname or '127.0.0.1', x.port or 2379)")
read -r zk_host zk_port <<<"$zk_hostport"
read -r etcd_host etcd_port <<<"$etcd_hostport"

zk_serving() {  # `srvr` names the server's mode only once it serves sessions
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2 && printf srvr >&3 && grep -q Mode: <&3" 2>/dev/null
}

if zk_serving "$zk_host" "$zk_port"; then
  echo "ZooKeeper: answering on $zk_host:$zk_port"
elif local_host "$zk_host" && [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
  echo "ZooKeeper: not running, starting it"
  zk_dir=/tmp/flashshop-zookeeper
  mkdir -p "$zk_dir/data"
  cat >"$zk_dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=$zk_host
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
CFG
  nohup java -Xmx256m -Dzookeeper.admin.enableServer=false -Dzookeeper.log.dir="$zk_dir" \
    -cp "$zk_dir:/usr/share/java/zookeeper.jar" org.apache.zookeeper.server.quorum.QuorumPeerMain \
    "$zk_dir/zoo.cfg" >"$zk_dir/zookeeper.log" 2>&1 &
  for _ in $(seq 1 60); do zk_serving "$zk_host" "$zk_port" && break; sleep 0.5; done
  zk_serving "$zk_host" "$zk_port" || { echo "ZooKeeper did not come up on $zk_host:$zk_port" >&2; exit 1; }
else
  echo "ZooKeeper: none on $zk_host:$zk_port (needed only for the zookeeper lock backend;" \
       "apt-get install zookeeper, or make system-deps as root)"
fi

if port_open "$etcd_host" "$etcd_port"; then
  echo "etcd: answering on $etcd_host:$etcd_port"
elif local_host "$etcd_host" && command -v etcd >/dev/null 2>&1; then
  echo "etcd: not running, starting it"
  etcd_dir=/tmp/flashshop-etcd
  mkdir -p "$etcd_dir"
  peer_port=$((etcd_port + 1))
  nohup etcd --name flashshop --data-dir "$etcd_dir/data" \
    --listen-client-urls "http://$etcd_host:$etcd_port" --advertise-client-urls "http://$etcd_host:$etcd_port" \
    --listen-peer-urls "http://$etcd_host:$peer_port" --initial-advertise-peer-urls "http://$etcd_host:$peer_port" \
    --initial-cluster "flashshop=http://$etcd_host:$peer_port" >"$etcd_dir/etcd.log" 2>&1 &
  wait_for etcd "$etcd_host" "$etcd_port"
else
  echo "etcd: none on $etcd_host:$etcd_port (needed only for the etcd lock backend;" \
       "apt-get install etcd-server, or make system-deps as root)"
fi

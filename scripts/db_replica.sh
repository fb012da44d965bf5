#!/usr/bin/env bash
# A MariaDB primary and a read replica on loopback for `make test-replica` (docs/scale-out.md,
# "The database"): two private mariadbd processes with their data under var/db-replica/
# (git-ignored), the primary on 127.0.0.1:$DB_PRIMARY_PORT (3316; server-id 1, binary log in
# ROW format, GTIDs) and the replica on 127.0.0.1:$DB_REPLICA_PORT (3317; server-id 2,
# read_only) replicating from it by GTID. root has no password on either, as on the
# machine's own MariaDB (port 3306, which this script never touches). The primary gets the
# database $DB_REPLICA_DATABASE (flashshop_replica) and replication carries it, and
# everything written after it, to the replica. Every start is fresh: new data directories.
#   scripts/db_replica.sh start    start both, set up replication, wait until the replica applies
#   scripts/db_replica.sh stop     stop the two servers this script started (by the pids in their pid files)
#   scripts/db_replica.sh status   whether each runs, and the replica's threads and lag
set -euo pipefail
cd "$(dirname "$0")/.."
host=127.0.0.1
primary_port=${DB_PRIMARY_PORT:-3316}
replica_port=${DB_REPLICA_PORT:-3317}
database=${DB_REPLICA_DATABASE:-flashshop_replica}
dir=$PWD/var/db-replica

sql() {  # sql PORT STATEMENT...: run as root over TCP, tab-separated, no column names
  local port=$1
  shift
  mariadb --no-defaults -h "$host" -P "$port" -uroot --connect-timeout=2 -N -B -e "$*"
}

slave_field() {  # slave_field NAME: one field of the replica's SHOW SLAVE STATUS, empty if none
  mariadb --no-defaults -h "$host" -P "$replica_port" -uroot --connect-timeout=2 -e 'SHOW SLAVE STATUS\G' 2>/dev/null |
    awk -v f="$1:" '$1 == f { print $2 }'
}

stop_one() {
  local pidfile=$dir/$1/mariadbd.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && [ "$(ps -o comm= -p "$pid")" = mariadbd ]; then  # not a reused pid
    kill -CONT "$pid" 2>/dev/null || true  # a server a test left paused must still be able to exit
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  stop_one replica
  stop_one primary
}

start_one() {  # start_one NAME PORT EXTRA-OPTIONS...
  local name=$1 port=$2
  shift 2
  rm -rf "${dir:?}/$name"
  mkdir -p "$dir/$name"
  mariadb-install-db --no-defaults --user=root --datadir="$dir/$name/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/$name/install.log" 2>&1 ||
    { echo "mariadb-install-db failed for the $name; see $dir/$name/install.log" >&2; exit 1; }
  # --user=root: this script runs as root on the development machines and CI; the data
  # directory is its own, so the server may own it. Small buffers: a test database.
  mariadbd --no-defaults --user=root --datadir="$dir/$name/data" \
    --port="$port" --bind-address="$host" --socket="$dir/$name/mariadbd.sock" \
    --pid-file="$dir/$name/mariadbd.pid" --log-error="$dir/$name/mariadbd.log" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci "$@" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    sql "$port" 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the $name did not answer on $host:$port within 10 s; see $dir/$name/mariadbd.log" >&2
  stop
  exit 1
}

start() {
  if ! command -v mariadbd >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then
    echo "mariadbd and mariadb-install-db are needed: sudo apt-get install mariadb-server" >&2
    exit 1
  fi
  stop  # servers left over from an interrupted run of this script
  for port in "$primary_port" "$replica_port"; do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
      echo "port $port is taken by a process this script did not start; set DB_PRIMARY_PORT/DB_REPLICA_PORT" >&2
      exit 1
    fi
  done
  start_one primary "$primary_port" --server-id=1 --log-bin="$dir/primary/data/binlog" \
    --binlog-format=ROW --gtid-strict-mode=1
  start_one replica "$replica_port" --server-id=2 --read-only=1 --relay-log="$dir/replica/data/relay" \
    --skip-slave-start --gtid-strict-mode=1
  # The replication account and the database are made on the primary after its binary
  # log is on, so the replica, starting from an empty GTID position, replays them too.
  sql "$primary_port" "CREATE USER 'repl'@'$host'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'$host';
    CREATE DATABASE \`$database\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  sql "$replica_port" "CHANGE MASTER TO MASTER_HOST='$host', MASTER_PORT=$primary_port, MASTER_USER='repl',
    MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos; START SLAVE;"
  local position
  position=$(sql "$primary_port" 'SELECT @@gtid_binlog_pos')
  for _ in $(seq 1 300); do
    if [ "$(slave_field Slave_IO_Running)" = Yes ] && [ "$(slave_field Slave_SQL_Running)" = Yes ] &&
      [ "$(sql "$replica_port" "SELECT MASTER_GTID_WAIT('$position', 0.1)" 2>/dev/null)" = 0 ]; then
      echo "MariaDB primary on $host:$primary_port, replica on $host:$replica_port (database $database, GTID $position)"
      return 0
    fi
    sleep 0.1
  done
  echo "the replica did not catch up within 30 s: IO=$(slave_field Slave_IO_Running)" \
    "SQL=$(slave_field Slave_SQL_Running) $(slave_field Last_Error); see $dir/*/mariadbd.log" >&2
  stop
  exit 1
}

status() {
  local name port pidfile
  for name in primary replica; do
    port=$primary_port
    [ "$name" = replica ] && port=$replica_port
    pidfile=$dir/$name/mariadbd.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name: pid $(cat "$pidfile"), $host:$port"
    else
      echo "$name: not running"
    fi
  done
  if sql "$replica_port" 'SELECT 1' >/dev/null 2>&1; then
    echo "replica: IO $(slave_field Slave_IO_Running), SQL $(slave_field Slave_SQL_Running)," \
      "Seconds_Behind_Master $(slave_field Seconds_Behind_Master), gtid_slave_pos $(sql "$replica_port" 'SELECT @@gtid_slave_pos')"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "MariaDB primary and replica stopped" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

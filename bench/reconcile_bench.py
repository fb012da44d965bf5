"""`make bench-reconcile`: time a full reconciliation run over 1,000,000 flash-sale orders.

The data is written straight in SQL, in a database of its own
(BENCH_RECONCILE_DATABASE_URL, default .../flashshop_bench_reconcile) and a Redis db
index of its own (BENCH_RECONCILE_REDIS_URL, default db 13): 100 sales of 10,000
orders each (each with its item, its sale link and the customers' quota rows),
200,000 customers and 10,000 checkout orders, generated with INSERT ... SELECT from
MariaDB's sequence engine (seq_0_to_N), so no row passes through Python. The ten
most recent sales are loaded into Redis (with a thousand settled reservation entries
each, as a sale leaves them behind); the ninety older ones have no Redis state, as
after KEEP_AFTER_END. Six problems are planted so the run has something to find.

The data is kept between runs and rebuilt only when missing or with --fresh.
Then the full run (all checks, recorded like a nightly run) is timed --runs times;
the median is the figure in docs/benchmarks.md.

    make bench-reconcile                  # reuse the data when present
    make bench-reconcile ARGS="--fresh"   # rebuild it first
"""

# ruff: noqa: S608 - the SQL is built from this script's own integer constants, never from input

import argparse
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_RECONCILE_DATABASE_URL", "mysql://root@127.0.0.1:3306/flashshop_bench_reconcile")
REDIS_URL = os.environ.get("BENCH_RECONCILE_REDIS_URL", "redis://127.0.0.1:6379/13")
# Set before Django reads its settings: the bench must never touch the dev database.
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ.pop("REDIS_CLUSTER_NODES", None)  # db 13 of a standalone Redis, flushed by the bench
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from reconciliation import runner  # noqa: E402
from seckill import keys, services, stock  # noqa: E402

SALES = 100
ORDERS_PER_SALE = 10_000
ORDERS = SALES * ORDERS_PER_SALE
CUSTOMERS = 200_000
CHECKOUT_ORDERS = 10_000
STOCK_PER_SALE = 9_000  # 8 of every 10 orders are live (paid or pending): 8,000 units sold
RECENT_SALES = 10  # ended hours ago, still in Redis
SETTLED_ENTRIES = 1_000  # reservation entries per recent sale whose order exists
EXPECTED_KINDS = {
    "over_limit": 1,
    "stock_drift": 2,
    "stranded_reservation": 1,
    "negative_stock": 1,
    "duplicate_order": 1,
}
TABLES = (
    "reconciliation_discrepancy",
    "reconciliation_reconciliationrun",
    "seckill_seckillquota",
    "seckill_seckillticket",
    "seckill_seckillorder",
    "orders_orderitem",
    "orders_order",
    "seckill_seckillactivity",
    "shop_product",
)


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else cursor.rowcount


def prepare_database():
    name = connection.settings_dict["NAME"]
    if not name.startswith("flashshop_bench"):
        raise SystemExit(f"refusing to run on database {name!r}: its name must start with flashshop_bench")
    call_command("ensure_database", verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)


def data_present():
    orders = sql("SELECT COUNT(*) FROM orders_order WHERE source = 'seckill'")[0][0]
    sales = sql("SELECT COUNT(*) FROM seckill_seckillactivity")[0][0]
    return orders == ORDERS + 1 and sales == SALES  # + the planted over-limit order


def generate():
    """Every row by INSERT ... SELECT over a sequence table: the server does the loops."""
    started = time.monotonic()

    def step(label, statement, params=None):
        t0 = time.monotonic()
        rows = sql(statement, params)
        print(f"  {label:<34} {rows if isinstance(rows, int) else '':>9} rows  {time.monotonic() - t0:6.1f} s")

    sql("SET SESSION foreign_key_checks = 0")
    sql("SET SESSION unique_checks = 0")
    for table in TABLES:
        sql(f"TRUNCATE TABLE {table}")
    sql("DELETE FROM auth_user WHERE username LIKE 'rbench%%'")
    user_base = (sql("SELECT COALESCE(MAX(id), 0) FROM auth_user")[0][0]) + 1
    sql(f"ALTER TABLE auth_user AUTO_INCREMENT = {user_base}")

    step(
        "customers",
        f"INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
        f"is_active, date_joined) SELECT {user_base} + seq, '!', 0, CONCAT('rbench', seq), '', '', '', 0, 1, NOW(6) "
        f"FROM seq_0_to_{CUSTOMERS - 1}",
    )
    step(
        "products",
        "INSERT INTO shop_product (id, name, slug, description, price, stock, version, is_active, created_at, "
        "updated_at) SELECT seq + 1, CONCAT('Bench product ', seq), CONCAT('bench-product-', seq), '', 100.00, 50, "
        f"1, 1, NOW(6), NOW(6) FROM seq_0_to_{SALES - 1}",
    )
    # Sales 1-90 ended 11 to 100 days ago; 91-100 ended 10 to 1 hours ago.
    step(
        "sales",
        "INSERT INTO seckill_seckillactivity (id, title, price, stock_total, stock_available, per_user_limit, "
        "starts_at, ends_at, payment_minutes, is_enabled, published_at, version, created_at, updated_at, product_id) "
        "SELECT seq + 1, CONCAT('Bench sale ', seq + 1), 60.00, %s, 0, 1, ends - INTERVAL 1 HOUR, ends, 15, 1, "
        "ends - INTERVAL 2 HOUR, 1, NOW(6), NOW(6), seq + 1 "
        f"FROM (SELECT seq, IF(seq < {SALES - RECENT_SALES}, NOW(6) - INTERVAL ({SALES} - seq) DAY, "
        f"NOW(6) - INTERVAL ({SALES} - seq) HOUR) AS ends FROM seq_0_to_{SALES - 1}) s",
        [STOCK_PER_SALE],
    )
    # Order n (0-based) belongs to sale n DIV 10000; customers are distinct within a sale.
    # Of every ten orders: 7 paid, 1 pending payment, 2 expired.
    step(
        "flash-sale orders",
        "INSERT INTO orders_order (id, number, status, source, total, version, idempotency_key, expires_at, paid_at, "
        "closed_at, payment_reference, created_at, updated_at, user_id) "
        "SELECT seq + 1, CONCAT('BN-', LPAD(seq + 1, 12, '0')), "
        "ELT(seq MOD 10 + 1, 'paid','paid','paid','paid','paid','paid','paid','pending_payment','expired','expired'), "
        "'seckill', 60.00, 1, NULL, created + INTERVAL 15 MINUTE, "
        "IF(seq MOD 10 < 7, created + INTERVAL 1 MINUTE, NULL), "
        "IF(seq MOD 10 >= 8, created + INTERVAL 15 MINUTE, NULL), '', created, created, "
        f"{user_base} + ((seq DIV {ORDERS_PER_SALE}) * 10007 + seq MOD {ORDERS_PER_SALE}) MOD {CUSTOMERS} "
        f"FROM (SELECT s.seq, a.starts_at + INTERVAL ((s.seq MOD {ORDERS_PER_SALE}) * 300000) MICROSECOND AS created "
        f"FROM seq_0_to_{ORDERS - 1} s JOIN seckill_seckillactivity a ON a.id = s.seq DIV {ORDERS_PER_SALE} + 1) o",
    )
    step(
        "their items",
        "INSERT INTO orders_orderitem (id, quantity, unit_price, order_id, product_id) "
        f"SELECT seq + 1, 1, 60.00, seq + 1, seq DIV {ORDERS_PER_SALE} + 1 FROM seq_0_to_{ORDERS - 1}",
    )
    step(
        "their sale links",
        "INSERT INTO seckill_seckillorder (id, quantity, reservation_id, created_at, activity_id, "
        "order_id, user_id) SELECT o.id, 1, LPAD(HEX(o.id), 32, '0'), o.created_at, "
        f"(o.id - 1) DIV {ORDERS_PER_SALE} + 1, o.id, o.user_id FROM orders_order o WHERE o.id <= {ORDERS}",
    )
    step(
        "customer quotas",
        "INSERT INTO seckill_seckillquota (units_held, unit_limit, activity_id, user_id) "
        "SELECT SUM(so.quantity), 1, so.activity_id, so.user_id FROM seckill_seckillorder so "
        "JOIN orders_order o ON o.id = so.order_id WHERE o.status IN ('paid', 'pending_payment') "
        "GROUP BY so.activity_id, so.user_id",
    )
    step(
        "sale pools",
        "UPDATE seckill_seckillactivity a JOIN (SELECT activity_id, SUM(units_held) AS live FROM seckill_seckillquota "
        "GROUP BY activity_id) q ON q.activity_id = a.id SET a.stock_available = a.stock_total - q.live",
    )
    first_checkout = ORDERS + 1
    step(
        "checkout orders",
        "INSERT INTO orders_order (id, number, status, source, total, version, idempotency_key, expires_at, paid_at, "
        "closed_at, payment_reference, created_at, updated_at, user_id) "
        f"SELECT {first_checkout} + seq, CONCAT('BC-', LPAD(seq + 1, 12, '0')), 'paid', 'checkout', 100.00, 1, NULL, "
        "created + INTERVAL 30 MINUTE, created + INTERVAL 1 MINUTE, NULL, '', created, created, "
        f"{user_base} + seq * 17 MOD {CUSTOMERS} "
        f"FROM (SELECT seq, NOW(6) - INTERVAL seq MINUTE AS created FROM seq_0_to_{CHECKOUT_ORDERS - 1}) c",
    )
    step(
        "their items",
        "INSERT INTO orders_orderitem (quantity, unit_price, order_id, product_id) "
        f"SELECT 1, 100.00, {first_checkout} + seq, seq MOD {SALES} + 1 FROM seq_0_to_{CHECKOUT_ORDERS - 1}",
    )
    plant_database_problems(user_base)
    sql("SET SESSION unique_checks = 1")
    sql("SET SESSION foreign_key_checks = 1")
    sql("ANALYZE TABLE orders_order, orders_orderitem, seckill_seckillorder, seckill_seckillquota")
    print(f"  generated in {time.monotonic() - started:.1f} s")


def plant_database_problems(user_base):
    """One customer over the limit in sale 1 (an order written around the services, so the
    DB pool is off by one too), a product below zero, a checkout submitted twice."""
    extra = ORDERS + CHECKOUT_ORDERS + 1
    user = user_base + 5  # holds a live order in sale 1 already (order 6, paid)
    sql(
        "INSERT INTO orders_order (id, number, status, source, total, version, expires_at, payment_reference, "
        "created_at, updated_at, user_id) VALUES (%s, 'BN-PLANTED-0001', 'paid', 'seckill', 60.00, 1, NOW(6), '', "
        "NOW(6), NOW(6), %s)",
        [extra, user],
    )
    sql("INSERT INTO orders_orderitem (quantity, unit_price, order_id, product_id) VALUES (1, 60.00, %s, 1)", [extra])
    sql(
        "INSERT INTO seckill_seckillorder (quantity, reservation_id, created_at, activity_id, order_id, "
        "user_id) VALUES (1, 'planted-over-limit', NOW(6), 1, %s, %s)",
        [extra, user],
    )
    sql("SET SESSION check_constraint_checks = 0")
    sql("UPDATE shop_product SET stock = -1 WHERE id = 2")
    sql("SET SESSION check_constraint_checks = 1")
    twice = user_base + 42
    for offset, order_id in enumerate((extra + 1, extra + 2)):
        sql(
            "INSERT INTO orders_order (id, number, status, source, total, version, expires_at, payment_reference, "
            "created_at, updated_at, user_id) VALUES (%s, %s, 'pending_payment', 'checkout', 100.00, 1, "
            "NOW(6) + INTERVAL 30 MINUTE, '', NOW(6) - INTERVAL %s SECOND, NOW(6), %s)",
            [order_id, f"BC-TWICE-{offset}", 40 - offset * 30, twice],
        )
        sql(
            "INSERT INTO orders_orderitem (quantity, unit_price, order_id, product_id) VALUES (2, 100.00, %s, 3)",
            [order_id],
        )


def load_redis():
    """The recent sales in Redis as a finished sale leaves them, plus a drifted counter and
    a stranded reservation."""
    client = stock.redis()
    client.flushdb()
    recent = list(range(SALES - RECENT_SALES + 1, SALES + 1))
    now_ms = stock.server_time_ms()
    for sale_id in recent:
        services.activity_warm(activity_id=sale_id)
        first = (sale_id - 1) * ORDERS_PER_SALE + 1
        rows = sql(
            "SELECT reservation_id, user_id FROM seckill_seckillorder WHERE id BETWEEN %s AND %s",
            [first + ORDERS_PER_SALE - SETTLED_ENTRIES, first + ORDERS_PER_SALE - 1],
        )
        client.hset(keys.reservations(sale_id), mapping={rid: f"{uid}:1:{now_ms - 3_600_000}" for rid, uid in rows})
    client.incrby(keys.stock(recent[0]), 3)  # drift: three units too many in Redis
    stranded = recent[1]
    client.decrby(keys.stock(stranded), 1)  # a reservation whose order was never written
    client.hset(keys.reservations(stranded), "planted-stranded", f"{7}:1:{now_ms - 600_000}")


def timed_runs(count):
    times, per_check, outcome = [], [], None
    for index in range(count):
        checkpoints = []

        def progress(done, total, label, elapsed, checkpoints=checkpoints):
            checkpoints.append((label, elapsed))

        started = time.perf_counter()
        outcome = runner.reconcile(triggered_by="bench-reconcile", progress=progress)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        per_check.append(checkpoints)
        print(f"  run {index + 1}: {elapsed:.2f} s  (run id {outcome.run.pk}, found {len(outcome.findings)})")
    return times, per_check, outcome


def check_durations(checkpoints):
    return [(label, end - start) for (label, start), (_, end) in itertools.pairwise(checkpoints)]


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = sql("SELECT VERSION()")[0][0]
    pool = sql("SELECT @@innodb_buffer_pool_size")[0][0] // (1024 * 1024)
    return (
        f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, MariaDB {version} (buffer pool {pool} MB)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="Rebuild the data even if it is there.")
    parser.add_argument("--runs", type=int, default=3, help="Timed runs (the median is reported).")
    args = parser.parse_args()

    prepare_database()
    if args.fresh or not data_present():
        print(f"Generating {ORDERS:,} flash-sale orders in {SALES} sales ({connection.settings_dict['NAME']}):")
        generate()
    else:
        print(f"Reusing the {ORDERS:,} orders in {connection.settings_dict['NAME']} (--fresh rebuilds them).")
    load_redis()
    sql("UPDATE reconciliation_discrepancy SET state = 'open'")  # every run records the same problems again

    print(f"Timing {args.runs} full reconciliation runs:")
    times, per_check, outcome = timed_runs(args.runs)
    median = statistics.median(times)
    found = outcome.counts
    print("\nSlowest run, by check:")
    slowest = per_check[times.index(max(times))]
    for label, seconds in check_durations(slowest):
        print(f"  {label:<30} {seconds:6.2f} s")
    print(f"\nFound: {found}")
    ok = all(found.get(kind, 0) == n for kind, n in EXPECTED_KINDS.items()) and sum(found.values()) == sum(
        EXPECTED_KINDS.values()
    )
    print(f"Planted problems found exactly: {'yes' if ok else 'NO, expected ' + str(EXPECTED_KINDS)}")
    print(f"\nMachine: {machine()}")
    print(f"Runs: {', '.join(f'{t:.2f}' for t in times)} s; median {median:.2f} s (target < 10 s)")
    print(f"When: {timezone.now():%Y-%m-%d %H:%M} UTC")
    return 0 if ok and median < 10 else 1


if __name__ == "__main__":
    sys.exit(main())

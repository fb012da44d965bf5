"""`make bench`: the purchase path against the ceiling and the DB-only strategies, in one run.

    make bench                 # full run: 3 rounds, a few minutes
    make bench ARGS=--quick    # 1 short round, under a minute with start-up

What it does (docs/benchmarks.md explains the method and the figures):
1. starts its own stack on loopback: redis-server on a free port (no persistence), the
   database flashshop_bench on the shared MariaDB (created, migrated, emptied of earlier
   runs' orders), gunicorn twice with the same settings (one with SECKILL_ORDER_MODE=sync,
   one with async) and a Celery worker; per-IP rate limiting is off (all traffic comes
   from 127.0.0.1), BENCH_ENDPOINTS=1 mounts bench/strategies under /bench/;
2. writes 5,000 customers and their API tokens straight into the database;
3. in every round, in rotating order, each strategy gets fresh stock (1,000 units, limit
   1) and wrk drives it with 256 connections, one customer token per request;
4. after each phase, reads from the database what was sold, oversold, undersold and
   over the limit;
5. writes bench/results/latest.json (+ a timestamped copy), latest.png, and for a full
   run the table in docs/benchmarks.md.

Every process it starts is stopped at the end, also on Ctrl-C or an error.
"""

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench import stack as stk  # noqa: E402
from bench.loadgen import run_wrk, summarize, wrk_version  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DB_NAME = "flashshop_bench"

# Units of the rotation. "seckill" is the selling phase followed, on the same sale, by the
# sold-out phase (seckill_soldout), so the sold-out path is measured on a sale the real
# path has just sold out.
UNITS = ("ceiling", "seckill", "seckill_async", "db_pessimistic", "db_optimistic", "naive")
STRATEGIES = ("ceiling", "seckill", "seckill_async", "seckill_soldout", "db_pessimistic", "db_optimistic", "naive")

MODES = {
    # rounds, units per strategy and round, seconds of a fixed-length phase (ceiling, sold
    # out), longest selling phase, warm-up. Quick is a smoke run: one round of half the stock.
    "full": {"rounds": 3, "stock": 1000, "fixed_s": 10, "cap_s": 60, "warmup_s": 3},
    "quick": {"rounds": 1, "stock": 500, "fixed_s": 2, "cap_s": 15, "warmup_s": 1},
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one short round (under a minute with start-up)")
    p.add_argument(
        "--profile", action="store_true", help="profile the seckill path in one process instead (bench/profiling.py)"
    )
    p.add_argument("--rounds", type=int, help="rounds of every strategy (default: 3, quick: 1)")
    p.add_argument("--fixed-seconds", type=int, help="length of the ceiling and sold-out phases")
    p.add_argument("--only", help="comma-separated units to run: " + ",".join(UNITS))
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--stock", type=int, help="units per strategy and round (default: 1,000, quick: 500)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    p.add_argument(
        "--worker-class", default=os.environ.get("BENCH_WORKER_CLASS", "gthread"), choices=("sync", "gthread")
    )
    p.add_argument(
        "--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 8)), help="threads per gthread worker"
    )
    p.add_argument("--celery-concurrency", type=int, default=2)
    p.add_argument(
        "--customer-rate-limit",
        type=int,
        help="SECKILL_RATE_LIMIT_PER_CUSTOMER for the servers (default: the app's default)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.png go")
    p.add_argument("--no-write", action="store_true", help="print the figures, write no file")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None, help="update docs/benchmarks.md")
    return p.parse_args(argv)


def server_env(redis_port, order_mode, customer_rate_limit=None):
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/1",
        BENCH_ENDPOINTS="1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        # All the load comes from 127.0.0.1: a per-IP limit would measure the limiter.
        SECKILL_RATE_LIMIT_PER_IP="0",
        SECKILL_ORDER_MODE=order_mode,
    )
    if customer_rate_limit is not None:
        env["SECKILL_RATE_LIMIT_PER_CUSTOMER"] = str(customer_rate_limit)
    for name in ("CELERY_TASK_ALWAYS_EAGER", "TEST_REDIS_URL", "TEST_CELERY_BROKER_URL"):
        env.pop(name, None)
    return env


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    redis_server = subprocess.run(  # noqa: S603
        [shutil.which("redis-server") or "redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@max_connections")
        mariadb, flush, max_conn = cursor.fetchone()
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            "django": _version("Django"),
            "djangorestframework": _version("djangorestframework"),
            "gunicorn": _version("gunicorn"),
            "celery": _version("celery"),
            "redis-py": _version("redis"),
            "hiredis": _version("hiredis"),
            "mysqlclient": _version("mysqlclient"),
            "redis-server": redis_server.split()[2].removeprefix("v=") if redis_server else None,
            "mariadb": mariadb,
            "wrk": wrk_version(),
        },
        "mariadb": {"innodb_flush_log_at_trx_commit": int(flush), "max_connections": int(max_conn)},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "shared_machine": True,
    }


def app_settings():
    from django.conf import settings

    names = (
        "SECKILL_RATE_LIMIT_PER_IP",
        "SECKILL_RATE_LIMIT_PER_CUSTOMER",
        "SECKILL_RATE_LIMIT_WINDOW_MS",
        "SECKILL_CUSTOMER_LOCK_TTL",
        "SECKILL_CUSTOMER_LOCK_WAIT",
        "SECKILL_META_CACHE_SECONDS",
        "SECKILL_SOLD_OUT_RECHECK_SECONDS",
        "SECKILL_PURCHASE_TOKEN_REQUIRED",
        "SECKILL_BUYERS_PER_IP",
        "STOCK_UPDATE_ATTEMPTS",
        "DEBUG",
    )
    out = {name: getattr(settings, name) for name in names if hasattr(settings, name)}
    out["DB_CONN_MAX_AGE"] = settings.DATABASES["default"]["CONN_MAX_AGE"]
    out["DB_ISOLATION"] = settings.DATABASES["default"]["OPTIONS"].get("isolation_level")
    out["SECKILL_ORDER_MODE"] = "sync (seckill, seckill_soldout), async (seckill_async)"
    return out


class Bench:
    def __init__(self, args, mode, stack, data):
        self.args = args
        self.mode = mode
        self.stack = stack
        self.data = data
        self.results = {name: [] for name in STRATEGIES}
        self.servers = {}
        self.redis = None
        self.celery = None
        self.mariadb_pids = stk.pids_named("mariadbd") or stk.pids_named("mysqld")
        self.tokens_file = None

    # -- measuring ------------------------------------------------------------------------

    def cpu(self, server):
        snap = {
            "gunicorn": server.cpu(),
            "redis": self.redis.cpu(),
            "mariadbd (shared)": sum(stk.cpu_seconds(p) for p in self.mariadb_pids),
        }
        if self.celery is not None:
            snap["celery"] = self.celery.cpu()
        return snap

    def settle(self, server, timeout=20.0):
        """Wait until the server has answered what wrk left queued (its CPU goes quiet)."""
        deadline = time.monotonic() + timeout
        before = server.cpu()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = server.cpu()
            if now - before < 0.02:
                return
            before = now

    def phase(self, server, path, *, stop_on_sold_out, round_no, fixed_s=None):
        base = self.servers[server]
        before = self.cpu(base["service"])
        raw = run_wrk(
            f"{base['url']}{path}",
            self.tokens_file,
            threads=self.args.wrk_threads,
            connections=self.args.connections,
            duration_s=fixed_s or self.mode["cap_s"],
            stop_on_sold_out=stop_on_sold_out,
            offset=round_no * 397,
            stack=self.stack,
        )
        self.settle(base["service"])
        after = self.cpu(base["service"])
        result = summarize(raw)
        cpu = {k: round(after[k] - before[k], 2) for k in before}
        result["cpu_s"] = cpu
        if result["responses"]:
            result["server_cpu_ms_per_request"] = round(1000 * cpu["gunicorn"] / result["responses"], 2)
        result["sell_out_reached"] = result["sold_out_seen_by_threads"] >= 1
        return result

    # -- the units ----------------------------------------------------------------------------

    def run_unit(self, unit, r):
        d = self.data
        stock = self.args.stock
        fixed = self.args.fixed_seconds or self.mode["fixed_s"]
        if unit == "ceiling":
            res = self.phase("sync", "/bench/ceiling/1/", stop_on_sold_out=False, round_no=r, fixed_s=fixed)
            self.record("ceiling", r, res, {})
        elif unit == "seckill":
            sale = d.create_sale(f"seckill-r{r}", stock)
            path = f"/api/seckill/activities/{sale}/purchase/"
            selling = self.phase("sync", path, stop_on_sold_out=True, round_no=r)
            after_selling = d.sale_outcome(sale)
            soldout = self.phase("sync", path, stop_on_sold_out=False, round_no=r, fixed_s=fixed)
            final = d.sale_outcome(sale)
            selling["after_selling_phase"] = {
                k: after_selling[k] for k in ("sold", "redis_remaining", "open_reservations")
            }
            self.record("seckill", r, selling, final)
            soldout["sold_during_phase"] = final["sold"] - after_selling["sold"]
            self.record("seckill_soldout", r, soldout, final)
        elif unit == "seckill_async":
            sale = d.create_sale(f"async-r{r}", stock)
            path = f"/api/seckill/activities/{sale}/purchase/"
            before = self.celery.cpu()
            res = self.phase("async", path, stop_on_sold_out=True, round_no=r)
            started = time.monotonic()
            while d.pending_tickets(sale) and time.monotonic() - started < 180:
                time.sleep(0.2)
            res["drain_s"] = round(time.monotonic() - started, 2)
            res["celery_cpu_s"] = round(self.celery.cpu() - before, 2)
            outcome = d.sale_outcome(sale)
            res["tickets"] = outcome.pop("tickets")
            self.record("seckill_async", r, res, outcome)
        elif unit in ("db_pessimistic", "db_optimistic", "naive"):
            product = d.create_product(f"{unit}-r{r}", stock)
            if unit == "naive":
                d.prepare_naive(product, stock)
            path = f"/bench/{unit.replace('_', '-')}/{product}/purchase/"
            res = self.phase("sync", path, stop_on_sold_out=True, round_no=r)
            self.record(unit, r, res, d.product_outcome(product, stock, naive=unit == "naive"))
        else:
            raise ValueError(unit)

    def record(self, name, r, res, outcome):
        outcome = {k: v for k, v in outcome.items() if k != "tickets"}
        entry = {"round": r + 1, **res, **outcome}
        self.results[name].append(entry)
        bad = ""
        if name != "ceiling" and (outcome.get("oversold") or outcome.get("undersold") or outcome.get("over_limit")):
            bad = (
                f"  oversold {outcome['oversold']} undersold {outcome['undersold']} over_limit {outcome['over_limit']}"
            )
        sold = f" sold {outcome['sold']}/{outcome['stock']}" if outcome else ""
        print(
            f"  {name:<16} {res['rps']:>8.1f} req/s  p50 {res['p50_ms']:>7.1f}  p99 {res['p99_ms']:>7.1f} ms"
            f"  answers {res['answers']}  errors {res['errors']}{sold}{bad}",
            flush=True,
        )


def start_servers(args, stack, redis_port, units, env_sync, env_async):
    servers = {}
    web_port = stk.free_port(8391)
    servers["sync"] = {
        "service": stk.start_gunicorn(
            stack,
            "gunicorn-sync",
            web_port,
            env_sync,
            workers=args.workers,
            worker_class=args.worker_class,
            threads=args.threads,
        ),
        "url": f"http://127.0.0.1:{web_port}",
    }
    celery = None
    if "seckill_async" in units:
        async_port = stk.free_port(8392 if web_port != 8392 else 8393)
        servers["async"] = {
            "service": stk.start_gunicorn(
                stack,
                "gunicorn-async",
                async_port,
                env_async,
                workers=args.workers,
                worker_class=args.worker_class,
                threads=args.threads,
            ),
            "url": f"http://127.0.0.1:{async_port}",
        }
        celery = stk.start_celery(stack, env_async, concurrency=args.celery_concurrency)
    return servers, celery


def main(argv=None):
    args = parse_args(argv)
    if args.profile:
        from bench import profiling

        return profiling.main(["--out", str(args.out)])
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    if args.rounds:
        mode["rounds"] = args.rounds
    if args.stock:
        mode["stock"] = args.stock
    args.stock = mode["stock"]
    units = [u for u in UNITS if not args.only or u in args.only.split(",")]
    started_at = datetime.now(UTC)
    t0 = time.monotonic()

    redis_port = stk.free_port(6391)
    env_sync = server_env(redis_port, "sync", args.customer_rate_limit)
    env_async = server_env(redis_port, "async", args.customer_rate_limit)
    os.environ.update(env_sync)  # the harness reads and writes the same database and Redis as the servers
    for name in set(os.environ) - set(env_sync):
        del os.environ[name]

    import django

    django.setup()
    from bench import data

    previous = signal.signal(signal.SIGTERM, _interrupt)
    succeeded = False
    stack = stk.Stack(tempfile.mkdtemp(prefix="flashshop-bench-"))
    print(f"bench ({mode_name}): logs in {stack.workdir}", flush=True)
    try:
        bench = Bench(args, mode, stack, data)
        bench.redis = stk.start_redis(stack, redis_port)
        # Servers boot while the database is prepared.
        bench.servers, bench.celery = start_servers(args, stack, redis_port, units, env_sync, env_async)
        data.ensure_database()
        data.migrate()  # servers booting meanwhile only need the tables once the load starts
        data.reset_tables()
        keys, created = data.customers(args.customers)
        bench.tokens_file = stack.workdir / "tokens.txt"
        bench.tokens_file.write_text("\n".join(keys) + "\n")
        print(
            f"  stack up: redis :{redis_port}, db {DB_NAME}, {len(keys)} customers"
            f" ({'created' if created else 'reused'}), {time.monotonic() - t0:.1f} s",
            flush=True,
        )
        for server in bench.servers.values():
            stk.wait_http_ok(server["service"], f"{server['url']}/healthz", timeout=60)
        if bench.celery is not None:
            from config.celery import app as celery_app

            stk.wait_until(lambda: celery_app.control.ping(timeout=0.5), 60, "the Celery worker", service=bench.celery)
        machine = machine_info()
        # Warm-up of every server at once: imports, DB and Redis connections of every worker thread.
        warmups = [
            threading.Thread(
                target=run_wrk,
                args=(f"{server['url']}/bench/ceiling/1/", bench.tokens_file),
                kwargs={
                    "threads": args.wrk_threads,
                    "connections": args.connections,
                    "duration_s": mode["warmup_s"],
                    "stop_on_sold_out": False,
                    "stack": stack,
                },
            )
            for server in bench.servers.values()
        ]
        for thread in warmups:
            thread.start()
        for thread in warmups:
            thread.join()
        for server in bench.servers.values():
            bench.settle(server["service"])
        print(f"  ready after {time.monotonic() - t0:.1f} s; {mode['rounds']} round(s)", flush=True)

        for r in range(mode["rounds"]):
            order = units[r % len(units) :] + units[: r % len(units)]
            print(f"round {r + 1}: {', '.join(order)}", flush=True)
            for unit in order:
                unit_started = time.monotonic()
                bench.run_unit(unit, r)
                print(f"    ({unit}: {time.monotonic() - unit_started:.1f} s)", flush=True)

        machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results = report.build(
            machine=machine,
            settings={
                "mode": mode_name,
                "gunicorn": {
                    "workers": args.workers,
                    "worker_class": args.worker_class,
                    "threads": args.threads if args.worker_class == "gthread" else 1,
                    "timeout_s": 30,
                    "servers": "two identical instances: SECKILL_ORDER_MODE=sync and =async",
                },
                "celery": {
                    "concurrency": args.celery_concurrency,
                    "pool": "prefork",
                    "running": bench.celery is not None,
                },
                "load": {
                    "generator": "wrk + bench/wrk/purchase.lua (one customer token per request)",
                    "threads": args.wrk_threads,
                    "connections": args.connections,
                    "timeout_s": 10,
                },
                "scenario": {"stock": args.stock, "customers": len(keys), "limit": 1, "quantity": 1},
                "rounds": mode["rounds"],
                "fixed_phase_s": args.fixed_seconds or mode["fixed_s"],
                "selling_phase_cap_s": mode["cap_s"],
                "order": "units rotate by one position per round: " + ", ".join(units),
                "app": app_settings(),
            },
            results=bench.results,
            started_at=started_at,
            duration_s=time.monotonic() - t0,
        )
        report.print_table(results)
        if not args.no_write:
            written = report.write(results, args.out, docs=(not args.quick) if args.docs is None else args.docs)
            for path in written:
                print(f"  wrote {path}")
        print(f"bench done in {time.monotonic() - t0:.1f} s", flush=True)
        succeeded = True
        return 0
    except KeyboardInterrupt:
        print("\nbench interrupted; stopping its processes", flush=True)
        return 130
    finally:
        closing = time.monotonic()
        stack.close()
        signal.signal(signal.SIGTERM, previous)
        print(f"  stopped every process of the bench in {time.monotonic() - closing:.1f} s", flush=True)
        if succeeded:
            shutil.rmtree(stack.workdir, ignore_errors=True)
        else:
            print(f"  logs kept in {stack.workdir}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

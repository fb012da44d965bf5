"""`make bench`: the purchase path against the ceiling and the DB-only strategies, in one run.

    make bench                 # full run: 3 rounds, a few minutes
    make bench ARGS=--quick    # 1 short round, under a minute with start-up

What it does (docs/benchmarks.md explains the method and the figures):
1. starts its own stack on loopback: redis-server on a free port (no persistence), the
   database flashshop_bench on the shared MariaDB (created, migrated, emptied of earlier
   runs' orders), gunicorn twice with the same settings (one with SECKILL_ACK=committed,
   one with reserved) and the order writer(s) (`manage.py seckill_writer`, 1 unless
   --writers); per-IP rate limiting is off (all traffic comes from 127.0.0.1),
   BENCH_ENDPOINTS=1 mounts bench/strategies under /bench/;
2. writes 5,000 customers and their API tokens straight into the database;
3. in every round, in rotating order, each strategy gets fresh stock (1,000 units, limit
   1) and wrk drives it with 256 connections, one customer token per request; the wrk
   script keeps the order number of every 2xx answer;
4. after each phase, waits for the writers to drain the sale's intents, then reads from
   the database what was sold, oversold, undersold and over the limit, and which
   acknowledged order numbers have no order (lost acks);
5. the writer phase (bench/writer_phase.py): the writers of the load phases stop, a
   stream of 50,000 intents is preloaded with purchase.lua and 1, then 2 fresh writers
   drain it, timed;
6. writes bench/results/latest.json (+ a timestamped copy), latest.png, and for a full
   run the table in docs/benchmarks.md.

Every process it starts is stopped at the end, also on Ctrl-C or an error.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench import stack as stk  # noqa: E402
from bench.cli import MODES, RESULTS, STRATEGIES, UNITS, parse_args  # noqa: E402
from bench.environment import DB_NAME, app_settings, machine_info, server_env  # noqa: E402
from bench.loadgen import run_wrk  # noqa: E402
from bench.rounds import Bench, start_servers, start_writers  # noqa: E402

# Names bench/profiling.py and other callers import from here.
__all__ = [
    "DB_NAME",
    "MODES",
    "RESULTS",
    "STRATEGIES",
    "UNITS",
    "Bench",
    "app_settings",
    "machine_info",
    "main",
    "parse_args",
    "server_env",
    "start_servers",
]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


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
    only = args.only.split(",") if args.only else None
    units = [u for u in UNITS if not only or u in only]
    run_writer_phase = not only or "writer" in only
    writer_intents = args.writer_intents or mode["writer_intents"]
    drain_writers = (
        tuple(int(x) for x in args.drain_writers.split(",")) if args.drain_writers else mode["drain_writers"]
    )
    started_at = datetime.now(UTC)
    t0 = time.monotonic()

    redis_port = stk.free_port(6391)
    env_committed = server_env(redis_port, "committed", args.customer_rate_limit)
    env_reserved = server_env(redis_port, "reserved", args.customer_rate_limit)
    os.environ.update(env_committed)  # the harness reads and writes the same database and Redis as the servers
    for name in set(os.environ) - set(env_committed):
        del os.environ[name]

    import django

    django.setup()
    from bench import data, writer_phase

    previous = signal.signal(signal.SIGTERM, _interrupt)
    succeeded = False
    stack = stk.Stack(tempfile.mkdtemp(prefix="flashshop-bench-"))
    print(f"bench ({mode_name}): logs in {stack.workdir}", flush=True)
    try:
        bench = Bench(args, mode, stack, data)
        bench.redis = stk.start_redis(stack, redis_port)
        # Servers boot while the database is prepared.
        bench.servers = start_servers(args, stack, redis_port, units, env_committed, env_reserved)
        bench.writer_env = env_committed
        data.ensure_database()
        data.migrate()  # servers booting meanwhile only need the tables once the load starts
        data.reset_tables()
        if any(u.startswith("seckill") for u in units):
            bench.writers = start_writers(args, stack, env_committed)
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
        for writer in bench.writers:
            stk.wait_until(writer.alive, 5, writer.name, service=writer)
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

        for r in range(mode["rounds"] if units else 0):  # --only writer: no load rounds
            order = units[r % len(units) :] + units[: r % len(units)]
            print(f"round {r + 1}: {', '.join(order)}", flush=True)
            for unit in order:
                unit_started = time.monotonic()
                bench.run_unit(unit, r)
                print(f"    ({unit}: {time.monotonic() - unit_started:.1f} s)", flush=True)

        writer = None
        if run_writer_phase:
            for service in bench.writers:  # the phase times its own writers, alone on the stream
                stack.stop(service)
            bench.writers = []
            writer = writer_phase.run(bench, intents=writer_intents, writer_counts=drain_writers)

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
                    "servers": "two identical instances: SECKILL_ACK=committed and =reserved",
                },
                "writers": {
                    "load_phases": args.writers if any(u.startswith("seckill") for u in units) else 0,
                    "command": "manage.py seckill_writer",
                    "writer_phase": {"intents": writer_intents, "drain_writers": list(drain_writers)},
                },
                "celery": "not running: the writer's confirmation e-mail messages wait in the bench Redis",
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
            writer=writer,
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

"""The command line of `make bench` (bench/run.py): its options, the units it rotates and
the two run modes, full and quick."""

import argparse
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DESCRIPTION = "`make bench`: the purchase path against the ceiling and the DB-only strategies, in one run."

# Units of the rotation. "seckill" is the selling phase followed, on the same sale, by the
# sold-out phase (seckill_soldout), so the sold-out path is measured on a sale the real
# path has just sold out. "writer" is not rotated: it runs once, after the rounds
# (bench/writer_phase.py).
UNITS = ("ceiling", "seckill", "seckill_reserved", "db_pessimistic", "db_optimistic", "naive")
PHASES = (*UNITS, "writer")
STRATEGIES = (
    "ceiling",
    "seckill",
    "seckill_reserved",
    "seckill_soldout",
    "db_pessimistic",
    "db_optimistic",
    "naive",
)

MODES = {
    # rounds, units per strategy and round, seconds of a fixed-length phase (ceiling, sold
    # out), longest selling phase, warm-up, intents of the writer phase and the writer
    # counts it drains them with. Quick is a smoke run: one round of half the stock.
    "full": {
        "rounds": 3,
        "stock": 1000,
        "fixed_s": 10,
        "cap_s": 60,
        "warmup_s": 3,
        "writer_intents": 50_000,
        "drain_writers": (1, 2),
    },
    "quick": {
        "rounds": 1,
        "stock": 500,
        "fixed_s": 2,
        "cap_s": 15,
        "warmup_s": 1,
        "writer_intents": 10_000,
        "drain_writers": (1,),
    },
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--quick", action="store_true", help="one short round (under a minute with start-up)")
    p.add_argument(
        "--profile", action="store_true", help="profile the seckill path in one process instead (bench/profiling.py)"
    )
    p.add_argument("--rounds", type=int, help="rounds of every strategy (default: 3, quick: 1)")
    p.add_argument("--fixed-seconds", type=int, help="length of the ceiling and sold-out phases")
    p.add_argument("--only", help="comma-separated phases to run: " + ",".join(PHASES))
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--stock", type=int, help="units per strategy and round (default: 1,000, quick: 500)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    p.add_argument(
        "--worker-class", default=os.environ.get("BENCH_WORKER_CLASS", "gthread"), choices=("sync", "gthread")
    )
    p.add_argument(
        "--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 24)), help="threads per gthread worker"
    )
    p.add_argument(
        "--writers",
        type=int,
        default=int(os.environ.get("BENCH_WRITERS", 1)),
        help="order writer processes (manage.py seckill_writer) during the load phases",
    )
    p.add_argument("--writer-intents", type=int, help="intents of the writer phase (default 50,000, quick 10,000)")
    p.add_argument(
        "--drain-writers", help="writer processes of each drain of the writer phase, e.g. 1,2 (default: full 1,2)"
    )
    p.add_argument(
        "--customer-rate-limit",
        type=int,
        help="SECKILL_RATE_LIMIT_PER_CUSTOMER for the servers (default: the app's default)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.png go")
    p.add_argument("--no-write", action="store_true", help="print the figures, write no file")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None, help="update docs/benchmarks.md")
    return p.parse_args(argv)

"""`make chaos ARGS="--runs N"`: every fault scenario, N times each, invariants checked after each.

Uses its own database (flashshop_chaos) and its own redis-server, which scenarios
restart and pause at will. Writes chaos/results/latest.json and docs/reliability.md.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import free_port  # noqa: E402
from chaos.stack import CHAOS_SETTINGS  # noqa: E402

DB_NAME = "flashshop_chaos"
UNUSABLE = "!"  # a password hash no password matches: chaos customers only use API tokens
RESULTS = ROOT / "chaos" / "results"


def configure_django(redis_port):
    os.environ.pop("REDIS_CLUSTER_NODES", None)  # the scenarios fault their own standalone redis-server
    os.environ.update(CHAOS_SETTINGS)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=os.environ.get("CHAOS_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/1",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0, interactive=False)


def customers(count=600):
    """Customers with API tokens, created once per database (bulk, no password hashing)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    existing = user_model.objects.filter(username__startswith="chaos-").count()
    if existing < count:
        user_model.objects.bulk_create(
            [user_model(username=f"chaos-{i}", password=UNUSABLE) for i in range(existing, count)],
            ignore_conflicts=True,
        )
        users = user_model.objects.filter(username__startswith="chaos-", auth_token__isnull=True)
        Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return list(
        Token.objects.filter(user__username__startswith="chaos-").order_by("user_id").values_list("user_id", "key")
    )


def run(names, runs, seed, workdir, redis_port):
    from django.db import connection

    from chaos.scenarios import SCENARIOS, ChaosContext

    ctx = ChaosContext(
        database_url=os.environ["DATABASE_URL"],
        redis_port=redis_port,
        workdir=str(workdir),
        customers=customers(),
    )
    table = []
    for name in names:
        func, _ = SCENARIOS[name]
        rows = []
        for index in range(runs):
            rng = random.Random(f"{seed}:{name}:{index}")  # noqa: S311 - reproducible fault timing
            started = time.monotonic()
            try:
                result = func(ctx, rng)
            except Exception as exc:  # noqa: BLE001 - a crashed scenario is a failed run, reported
                from chaos.scenarios import RunResult

                result = RunResult(violations=[f"scenario crashed: {exc!r}"], notes=[traceback.format_exc()[-800:]])
            finally:
                connection.close()
            took = time.monotonic() - started
            rows.append(result)
            flag = "ok" if not result.violations else f"{len(result.violations)} VIOLATION(S)"
            print(
                f"  {name:<22} run {index + 1}/{runs}: {flag:<14} faults={result.faults:<3} "
                f"requests={result.requests:<5} orders={result.orders:<4} lost_acks={result.lost_acks} "
                f"settle={result.settle_s:.1f}s "
                f"({took:.0f}s) {'; '.join(result.notes)[:110]}",
                flush=True,
            )
            for violation in result.violations:
                print(f"      - {violation}", flush=True)
        settle = [r.settle_s for r in rows]
        table.append(
            {
                "name": name,
                "runs": runs,
                "faults": sum(r.faults for r in rows),
                "requests": sum(r.requests for r in rows),
                "orders": sum(r.orders for r in rows),
                "lost_acks": sum(r.lost_acks for r in rows),
                "violations": sum(len(r.violations) for r in rows),
                "settle_s": round(max(settle), 2),
                "settle_s_median": round(statistics.median(settle), 2),
                "violation_details": [v for r in rows for v in r.violations],
                "notes": rows[-1].notes,
                "runs_detail": [
                    {
                        "faults": r.faults,
                        "requests": r.requests,
                        "orders": r.orders,
                        "lost_acks": r.lost_acks,
                        "violations": len(r.violations),
                        "settle_s": r.settle_s,
                    }
                    for r in rows
                ],
            }
        )
    return table


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(table, args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "settings": {
            "runs": args.runs,
            "seed": args.seed,
            "command": 'make chaos ARGS="' + " ".join(args.argv) + '"' if args.argv else "make chaos",
            **{k: v for k, v in sorted(CHAOS_SETTINGS.items()) if k.startswith(("SECKILL", "CELERY", "DB_"))},
        },
        "scenarios": table,
    }
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", default="flash")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--fast", action="store_true", help="only the scenarios that also run in make test")
    parser.add_argument(
        "--redis-port", type=int, default=6420, help="preferred port of the chaos redis-server (web: this + 2000)"
    )
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "flashshop-chaos"))
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    redis_port = free_port(args.redis_port)
    configure_django(redis_port)  # before the scenarios import the models
    from chaos.scenarios import SCENARIOS

    names = [n for n in (args.only.split(",") if args.only else SCENARIOS) if n]
    if args.fast:
        names = [n for n in names if SCENARIOS[n][1]]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    print(f"chaos: {len(names)} scenario(s) x {args.runs} run(s), seed {args.seed!r}", flush=True)
    table = run(names, args.runs, args.seed, Path(args.workdir), redis_port)
    payload = write_results(table, args)
    from chaos.report import write_reliability_doc

    write_reliability_doc(payload)
    bad = sum(row["violations"] for row in table)
    lost = sum(row["lost_acks"] for row in table)
    print(
        f"chaos: {bad} violation(s), {lost} lost acknowledgement(s) in {sum(r['runs'] for r in table)} run(s); "
        "results in chaos/results/latest.json"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

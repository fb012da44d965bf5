"""docs/reliability.md from chaos/results/latest.json: the table and how to reproduce it."""

import inspect
from pathlib import Path

from chaos.scenarios import SCENARIOS

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"

INTRO = """# Reliability: faults injected during a live sale

`make chaos ARGS="--runs N"` runs every scenario below N times (default 5) on the real
stack: gunicorn (sync workers), Celery, MariaDB and a redis-server of its own. Each run
starts a sale, drives buyers over HTTP, injects one fault at a random moment (seeded,
so a run can be repeated with `--seed`), lets the system settle with the repairs
production runs (stranded-unit sweep, ticket re-drive, re-sync), sells whatever is left
to fresh buyers, and checks I1-I5 (docs/architecture.md) from the database and Redis
(`chaos/checks.py`). A violation is any broken invariant, any 5xx other than 503, or a
scenario's own promise (named in its description) not kept.

The scenarios marked *fast* also run in `make test` (`chaos/tests/`), once each.

Columns: `faults` counts injections (a scenario may inject several per run), `requests`
the HTTP answers buyers got, `orders` the units in live orders at the end (summed over
runs); `settle` is how long the repair phase took after the buyers stopped: waiting
for async tickets (with the re-drive the beat schedule runs every 30 s done by hand
after 10 s), giving back stranded reservations, re-syncing Redis.
"""


def write_reliability_doc(payload):
    rows = payload["scenarios"]
    lines = [INTRO, f"Last run: {payload['generated_at']}, seed `{payload['settings']['seed']}`, "
             f"{payload['machine']['cores']} cores.\n"]  # fmt: skip
    lines.append("| scenario | runs | faults | requests | orders | violations | settle (max / median, s) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['runs']} | {row['faults']} | {row['requests']} | {row['orders']} | "
            f"**{row['violations']}** | {row['settle_s']} / {row['settle_s_median']} |"
        )
    lines.append("")
    lines.append("## Scenarios\n")
    for name, (func, fast) in SCENARIOS.items():
        doc = inspect.getdoc(func) or ""
        observed = next((r["notes"] for r in rows if r["name"] == name), [])
        lines.append(f"**{name}**{' (fast)' if fast else ''}. {doc}")
        if observed:
            lines.append(f"Last run: {'; '.join(observed)}.")
        lines.append("")
    lines.append(
        "## Reproduce\n\n```sh\nmake chaos                       # all scenarios, 5 runs each\n"
        'make chaos ARGS="--runs 20 --only redis_restart_empty --seed 7"\n```\n\n'
        "Settings used by the chaos stack (short leases and grace periods, so faults "
        "play out within seconds) are in `chaos/stack.py`.\n"
    )
    DOC.write_text("\n".join(lines))

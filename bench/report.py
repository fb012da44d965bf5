"""Figures of a run: aggregate rounds, ratios and targets, latest.json, the plot, the docs table."""

import json
import re
import statistics
from pathlib import Path

from bench.plot import plot

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_START = "<!-- purchase-path-results:start (written by bench/run.py) -->"
DOCS_END = "<!-- purchase-path-results:end -->"

ORDER = ("ceiling", "seckill", "seckill_reserved", "seckill_soldout", "db_pessimistic", "db_optimistic", "naive")
PHASE = {
    "ceiling": "fixed length",
    "seckill": "until sold out",
    "seckill_reserved": "until sold out",
    "seckill_soldout": "fixed length, sold out",
    "db_pessimistic": "until sold out",
    "db_optimistic": "until sold out",
    "naive": "until sold out",
}
CORRECTNESS = ("sold", "oversold", "undersold", "over_limit", "stock")
PER_ROUND_KEYS = (
    "round",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "responses",
    "elapsed_s",
    "answers",
    "errors",
    "socket_errors",
    "sell_out_reached",
    "wrk_cpu_s",
    "wrk_cpu_pct_of_one_core",
    "server_cpu_ms_per_request",
    "cpu_s",
    "sold",
    "oversold",
    "undersold",
    "over_limit",
    "stock",
    "buyers",
    "conserved",
    "redis_remaining",
    "db_available",
    "open_reservations",
    "sold_during_phase",
    "after_selling_phase",
    "drain_s",
    "refused",
    "acks",
    "lost_acks",
    "duplicate_acks",
    "lost_examples",
)


def _median(values):
    values = [v for v in values if v is not None]
    return round(float(statistics.median(values)), 1) if values else None


def _sum_dicts(dicts):
    total = {}
    for d in dicts:
        for k, v in (d or {}).items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items()))


def aggregate(rounds):
    """One strategy's figures over its rounds: medians of speed, sums of correctness and errors."""
    if not rounds:
        return None
    out = {
        "rps": _median([r["rps"] for r in rounds]),
        "p50_ms": _median([r["p50_ms"] for r in rounds]),
        "p95_ms": _median([r["p95_ms"] for r in rounds]),
        "p99_ms": _median([r["p99_ms"] for r in rounds]),
        "errors": sum(r["errors"] for r in rounds),
    }
    for key in CORRECTNESS:  # None where nothing is sold (the ceiling), so every strategy has the keys
        out[key] = sum(r.get(key) or 0 for r in rounds) if "sold" in rounds[0] else None
    for key in ("acks", "lost_acks", "duplicate_acks"):  # counted from the order numbers: not for the ceiling
        out[key] = sum(r.get(key) or 0 for r in rounds) if "lost_acks" in rounds[0] else None
    out.update(
        phase=PHASE.get(rounds[0].get("name", "")),
        rounds=len(rounds),
        responses=sum(r["responses"] for r in rounds),
        answers=_sum_dicts(r["answers"] for r in rounds),
        socket_errors=_sum_dicts(r["socket_errors"] for r in rounds),
        wrk_cpu_pct_of_one_core=_median([r.get("wrk_cpu_pct_of_one_core") for r in rounds]),
        server_cpu_ms_per_request=_median([r.get("server_cpu_ms_per_request") for r in rounds]),
        per_round=[{k: r[k] for k in PER_ROUND_KEYS if k in r} for r in rounds],
    )
    if "drain_s" in rounds[0]:
        out["writer_drain_after_phase_s"] = _median([r.get("drain_s") for r in rounds])
    if "sold_during_phase" in rounds[0]:
        out["sold_during_phase"] = sum(r.get("sold_during_phase") or 0 for r in rounds)
    if "sold" in rounds[0]:
        out["sell_out_reached_every_round"] = all(r.get("sell_out_reached", True) for r in rounds)
        out["conserved_every_round"] = all(r.get("conserved", True) for r in rounds)
    return out


def _ratio(a, b, key="rps"):
    if not a or not b or not b.get(key) or a.get(key) is None:
        return None
    return round(a[key] / b[key], 2)


def ratios(strategies):
    s = strategies
    return {
        "seckill_reserved/ceiling": _ratio(s.get("seckill_reserved"), s.get("ceiling")),
        "seckill_reserved/db_pessimistic": _ratio(s.get("seckill_reserved"), s.get("db_pessimistic")),
        "seckill/ceiling": _ratio(s.get("seckill"), s.get("ceiling")),
        "seckill/db_pessimistic": _ratio(s.get("seckill"), s.get("db_pessimistic")),
        "p99 seckill/db_pessimistic": _ratio(s.get("seckill"), s.get("db_pessimistic"), "p99_ms"),
        "seckill_soldout/ceiling": _ratio(s.get("seckill_soldout"), s.get("ceiling")),
        "seckill/db_optimistic": _ratio(s.get("seckill"), s.get("db_optimistic")),
    }


# (name, ratio key, goal, comparison): the targets of the order pipeline (docs/benchmarks.md).
RATIO_TARGETS = (
    ("seckill_reserved >= 0.8 x ceiling req/s", "seckill_reserved/ceiling", 0.8, "min"),
    ("seckill_reserved >= 5 x db_pessimistic req/s", "seckill_reserved/db_pessimistic", 5.0, "min"),
    ("seckill (committed) >= 0.6 x ceiling req/s", "seckill/ceiling", 0.6, "min"),
    ("seckill (committed) >= 3 x db_pessimistic req/s", "seckill/db_pessimistic", 3.0, "min"),
    ("seckill p99 < db_pessimistic p99", "p99 seckill/db_pessimistic", 1.0, "below"),
    ("seckill_soldout >= 0.95 x ceiling req/s", "seckill_soldout/ceiling", 0.95, "min"),
)
WRITER_TARGET = 10_000


def targets(strategies, ratio, writer=None):
    def target(value, goal, met):
        return {"value": value, "target": goal, "met": bool(met) if value is not None else None}

    out = {}
    for name, key, goal, how in RATIO_TARGETS:
        value = ratio.get(key)
        if how == "min":
            out[name] = target(value, goal, value is not None and value >= goal)
        else:
            out[name] = target(value, f"< {goal:g}", value is not None and value < goal)
    if writer is not None:
        out[f"writer >= {WRITER_TARGET:,} orders/s"] = target(
            writer.get("orders_per_s"), WRITER_TARGET, (writer.get("orders_per_s") or 0) >= WRITER_TARGET
        )
        out["writer: every intent exactly one order"] = target(
            writer.get("exactly_once"), True, writer.get("exactly_once") is True
        )
    bad = [
        name
        for name, f in strategies.items()
        if f
        and name not in ("naive", "ceiling")
        and (f.get("oversold") or f.get("undersold") or f.get("over_limit") or f.get("lost_acks"))
    ]
    out["zero oversold, undersold, over-limit, lost acks (all but naive)"] = {
        "value": bad or "none",
        "target": "none",
        "met": not bad,
    }
    naive_oversold = (strategies.get("naive") or {}).get("oversold")
    out["naive shows its oversell"] = target(naive_oversold, "> 0", (naive_oversold or 0) > 0)
    return out


def build(*, machine, settings, results, started_at, duration_s, writer=None):
    strategies = {}
    for name in ORDER:
        rounds = [dict(r, name=name) for r in results.get(name, [])]
        agg = aggregate(rounds)
        if agg is not None:
            strategies[name] = agg
    ratio = ratios(strategies)
    return {
        "schema": 2,
        "generated_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 1),
        "machine": machine,
        "settings": settings,
        "method": {
            "rps": "responses counted by the wrk script / time from the first request sent to the last "
            "response counted (monotonic clock in Lua); median over rounds",
            "latency": "wrk's per-request latency percentiles of the phase; median over rounds",
            "until sold out": "fresh stock every round; each wrk thread stops at its first sold_out answer, so the "
            "phase measures the sale while stock lasts",
            "fixed length": "the ceiling, and the real path on the sale the seckill phase has just sold out",
            "errors": "socket errors + timeouts + 5xx + statuses other than 200/201/202/409/429; 409 and 429 are "
            "business answers, listed under answers",
            "correctness": "read from the database after each phase, once the writers have drained the sale's "
            "intents stream; summed over rounds; stock = units offered over all rounds",
            "lost_acks": "2xx answers (order numbers kept by the wrk script) with no order row once the stream is "
            "empty; summed over rounds",
            "writer": "bench/writer_phase.py: a stream preloaded by purchase.lua, drained by fresh writer processes; "
            "orders/s from the first batch's transaction to the empty stream",
        },
        "strategies": strategies,
        "writer": writer,
        "ratios": ratio,
        "targets": targets(strategies, ratio, writer),
    }


# --- text ------------------------------------------------------------------------------------

COLUMNS = (
    ("strategy", None),
    ("phase", None),
    ("req/s", "rps"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("errors", "errors"),
    ("sold", "sold"),
    ("oversold", "oversold"),
    ("undersold", "undersold"),
    ("over-limit", "over_limit"),
    ("lost acks", "lost_acks"),
    ("answers", None),
    ("server CPU ms/req", "server_cpu_ms_per_request"),
    ("wrk CPU", None),
)


def _ratio_cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) and abs(value) >= 100:
        return f"{value:,.0f}"  # orders/s
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table_rows(results):
    rows = []
    for name, f in results["strategies"].items():
        answers = ", ".join(f"{code}: {n:,}" for code, n in f["answers"].items())
        row = []
        for title, key in COLUMNS:
            if title == "strategy":
                row.append(f"**{name}**" if name.startswith("seckill") else name)
            elif title == "phase":
                row.append(f.get("phase") or "")
            elif title == "answers":
                row.append(answers)
            elif title == "wrk CPU":
                row.append(
                    f"{f['wrk_cpu_pct_of_one_core']:.0f} %" if f.get("wrk_cpu_pct_of_one_core") is not None else "-"
                )
            elif key in ("sold", "oversold", "undersold", "over_limit", "lost_acks") and name == "ceiling":
                row.append("-")
            elif key == "sold" and f.get("stock"):
                row.append(f"{f['sold']:,} / {f['stock']:,}")
            else:
                row.append(_cell(f.get(key)))
        rows.append(row)
    return rows


def markdown(results):
    header = [t for t, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines.append("")
    lines.append("| ratio (req/s unless noted) | value | target | met |")
    lines.append("|---|---|---|---|")
    for name, t in results["targets"].items():
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {name} | {_ratio_cell(t['value'])} | {_ratio_cell(t['target'])} | {met} |")
    m, s = results["machine"], results["settings"]
    g = s["gunicorn"]
    w = results.get("writer")
    if w:
        lines.append("")
        lines.append("| writer phase | intents | writers | orders/s | batch p50 | batch max | batches | exactly once |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for run in w.get("runs") or [w]:
            lines.append(
                f"| drain of a preloaded stream | {run['intents']:,} | {run['writers']} | "
                f"{run['orders_per_s']:,.0f} | {run['batch_p50']:g} | {run['batch_max']} | {run['batches']} | "
                f"{'yes' if run['exactly_once'] else '**no**'} |"
            )
    writers = s.get("writers", {}).get("load_phases")
    lines.append("")
    lines.append(
        f"Run of {results['generated_at']} ({s['mode']}, {s['rounds']} round(s), {results['duration_s']:.0f} s): "
        f"{m['cores']} cores {m['cpu_model']}, {m['memory_gib']} GiB; gunicorn {g['workers']} x {g['worker_class']}"
        + (f" x {g['threads']} threads" if g["worker_class"] == "gthread" else "")
        + (f"; {writers} order writer(s) in the load phases" if writers else "")
        + f"; wrk {s['load']['threads']} threads, {s['load']['connections']} connections; "
        f"{s['scenario']['stock']:,} units, {s['scenario']['customers']:,} customers, limit {s['scenario']['limit']}; "
        f"load average {m['loadavg_at_start']} at the start, {m.get('loadavg_at_end')} at the end."
    )
    return "\n".join(lines)


def print_table(results):
    rows = table_rows(results)
    header = [t for t, _ in COLUMNS]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print()
    for row in [header, *rows]:
        print("  " + "  ".join(str(c).replace("**", "").ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for name, value in results["ratios"].items():
        print(f"  {name:<32} {_ratio_cell(value)}")
    for run in (results.get("writer") or {}).get("runs") or []:
        print(
            f"  writer x{run['writers']}: {run['orders_per_s']:,.0f} orders/s, batch p50 {run['batch_p50']:g}, "
            f"{run['intents']:,} intents, exactly once {run['exactly_once']}"
        )
    for name, t in results["targets"].items():
        print(f"  [{'x' if t['met'] else ' '}] {name}: {_ratio_cell(t['value'])}")
    print()


# --- files -----------------------------------------------------------------------------------


def update_docs(results, path=DOCS):
    """Rewrite the table between the markers of the "Purchase path" section; nothing else."""
    if not path.exists():
        return False
    text = path.read_text()
    if DOCS_START not in text or DOCS_END not in text:
        return False
    block = f"{DOCS_START}\n{markdown(results)}\n{DOCS_END}"
    text = re.sub(re.escape(DOCS_START) + r".*?" + re.escape(DOCS_END), lambda _: block, text, flags=re.S)
    path.write_text(text)
    return True


def write(results, out_dir, docs=False):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps(results, indent=2, default=str) + "\n"
    stamp = results["generated_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    suffix = "-quick" if results["settings"]["mode"] == "quick" else ""
    written = []
    for name in ("latest.json", f"{stamp}{suffix}.json"):
        tmp = out_dir / f"{name}.tmp"
        tmp.write_text(body)
        tmp.replace(out_dir / name)
        written.append(out_dir / name)
    plot(results, out_dir / "latest.png")
    written.append(out_dir / "latest.png")
    if docs and update_docs(results):
        written.append(DOCS)
    return written


def main(argv=None):
    """`python -m bench.report [results.json]`: rewrite the docs table (and the plot) from a results file."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else ROOT / "bench" / "results" / "latest.json"
    results = json.loads(path.read_text())
    plot(results, path.with_name("latest.png"))
    print("docs/benchmarks.md updated" if update_docs(results) else "docs/benchmarks.md has no results markers")
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

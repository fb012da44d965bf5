"""Fast checks of the bench helpers (no server, no database): figures, ratios, docs table."""

from datetime import UTC, datetime

from bench import report
from bench.loadgen import LUA_SCRIPT, summarize


def _raw(statuses_by_thread, *, start=100.0, ends=(104.0, 105.0), stopped=(True, False), errors=None):
    threads = {}
    for i, statuses in enumerate(statuses_by_thread):
        threads[str(i + 1)] = {
            "responses": float(sum(statuses.values())),
            "statuses": {code: float(n) for code, n in statuses.items()},
            "t_start": start + 0.01 * i,
            "t_end": ends[i],
            "stopped": stopped[i],
        }
    return {
        "errors": {"connect": 0.0, "read": 1.0, "write": 0.0, "timeout": 2.0, "status": 10.0, **(errors or {})},
        "latency_us": {"p50": 1500.0, "p95": 9000.0, "p99": 12500.0, "p999": 20000.0, "max": 30000.0},
        "threads": threads,
        "wrk_cpu_s": 0.5,
        "wall_s": 5.0,
    }


def test_summarize_counts_rate_over_the_measured_span_and_separates_business_answers():
    raw = _raw([{"201": 300, "409": 100, "502": 1}, {"201": 99, "429": 50, "404": 2}])
    s = summarize(raw)
    assert s["responses"] == 552
    assert s["elapsed_s"] == 5.0  # first request of any thread to the last counted response
    assert s["rps"] == 110.4
    assert s["answers"] == {"201": 399, "404": 2, "409": 100, "429": 50, "502": 1}
    # 409 and 429 are answers, not errors; 5xx, unexpected 4xx and socket errors are
    assert s["server_errors"] == 1
    assert s["unexpected_statuses"] == 2
    assert s["errors"] == 1 + 2 + 1 + 2
    assert (s["p50_ms"], s["p99_ms"]) == (1.5, 12.5)
    assert s["sold_out_seen_by_threads"] == 1
    assert s["wrk_cpu_pct_of_one_core"] == 10.0


def _round(rps, p99, **extra):
    base = {
        "rps": rps,
        "p50_ms": p99 / 2,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
        "errors": 0,
        "responses": 100,
        "answers": {"201": 100},
        "socket_errors": {"read": 0},
    }
    return base | extra


def _results():
    sold = {"sold": 1000, "oversold": 0, "undersold": 0, "over_limit": 0, "stock": 1000, "acks": 1000, "lost_acks": 0}
    return {
        "ceiling": [_round(1000, 300, acks=100), _round(900, 320), _round(1100, 280)],
        "seckill": [_round(700, 400, **sold), _round(650, 420, **sold), _round(600, 500, **sold)],
        "seckill_reserved": [_round(900, 300, **sold)],
        "seckill_soldout": [_round(950, 290, **sold)],
        "db_pessimistic": [_round(170, 2000, **sold)],
        "naive": [_round(500, 900, **(sold | {"sold": 1003, "oversold": 3, "lost_acks": 2}))],
    }


WRITER = {
    "orders_per_s": 12000.0,
    "batch_p50": 500,
    "batch_max": 500,
    "batches": 100,
    "intents": 50000,
    "exactly_once": True,
    "writers": 1,
}


def _build(results, writer=WRITER):
    machine = {"cores": 2, "cpu_model": "test", "memory_gib": 1, "loadavg_at_start": [0, 0, 0]}
    settings = {
        "mode": "full",
        "rounds": 3,
        "gunicorn": {"workers": 2, "worker_class": "gthread", "threads": 8},
        "load": {"threads": 2, "connections": 256},
        "scenario": {"stock": 1000, "customers": 5000, "limit": 1},
    }
    return report.build(
        machine=machine,
        settings=settings,
        results=results,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=1,
        writer=writer,
    )


def test_build_takes_medians_of_speed_and_sums_of_correctness():
    out = _build(_results())
    assert list(out["strategies"]) == [
        "ceiling",
        "seckill",
        "seckill_reserved",
        "seckill_soldout",
        "db_pessimistic",
        "naive",
    ]
    seckill = out["strategies"]["seckill"]
    assert (seckill["rps"], seckill["p99_ms"]) == (650, 420)
    assert (seckill["sold"], seckill["stock"], seckill["rounds"]) == (3000, 3000, 3)
    assert (seckill["acks"], seckill["lost_acks"]) == (3000, 0)
    assert out["strategies"]["ceiling"]["sold"] is None
    assert out["strategies"]["ceiling"]["lost_acks"] is None
    assert out["strategies"]["ceiling"]["acks"] is None
    assert out["writer"] == WRITER
    for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "errors", "sold", "oversold", "undersold", "over_limit"):
        assert key in seckill


def test_ratios_and_targets():
    out = _build(_results())
    assert out["ratios"]["seckill/ceiling"] == 0.65
    assert out["ratios"]["seckill_reserved/ceiling"] == 0.9
    assert out["ratios"]["seckill_reserved/db_pessimistic"] == 5.29
    assert out["ratios"]["seckill_soldout/ceiling"] == 0.95
    assert out["ratios"]["seckill/db_pessimistic"] == 3.82
    assert out["ratios"]["p99 seckill/db_pessimistic"] == 0.21
    met = {name: t["met"] for name, t in out["targets"].items()}
    assert all(met.values()), met  # naive's lost acks do not count


def test_targets_name_what_misses_and_by_how_much():
    results = _results()
    results["seckill_reserved"][0]["rps"] = 700  # 0.7 x ceiling, 4.1 x db_pessimistic
    out = _build(results, writer=dict(WRITER, orders_per_s=6000.0))
    t = out["targets"]
    assert t["seckill_reserved >= 0.8 x ceiling req/s"] == {"value": 0.7, "target": 0.8, "met": False}
    assert t["seckill_reserved >= 5 x db_pessimistic req/s"]["met"] is False
    assert t["writer >= 10,000 orders/s"] == {"value": 6000.0, "target": 10000, "met": False}
    assert t["seckill (committed) >= 0.6 x ceiling req/s"]["met"] is True


def test_targets_flag_a_correctness_failure_and_a_naive_that_does_not_oversell():
    results = _results()
    results["seckill"][0]["undersold"] = 2
    results["naive"][0]["oversold"] = 0
    met = {name: t["met"] for name, t in _build(results)["targets"].items()}
    assert met["zero oversold, undersold, over-limit, lost acks (all but naive)"] is False
    assert met["naive shows its oversell"] is False


def test_a_lost_ack_fails_the_correctness_target():
    results = _results()
    results["seckill_reserved"][0]["lost_acks"] = 1
    target = _build(results)["targets"]["zero oversold, undersold, over-limit, lost acks (all but naive)"]
    assert target == {"value": ["seckill_reserved"], "target": "none", "met": False}


def test_writer_table_in_the_docs_block():
    text = report.markdown(_build(_results(), writer=WRITER))
    assert "| drain of a preloaded stream | 50,000 | 1 | 12,000 | 500 | 500 | 100 | yes |" in text


def test_docs_update_rewrites_only_the_marked_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Purchase path\n\n"
        f"{report.DOCS_START}\nold table\n{report.DOCS_END}\n\n"
        "## Reconciliation\n\nsomebody else's section\n"
    )
    assert report.update_docs(_build(_results()), doc)
    text = doc.read_text()
    assert "old table" not in text
    assert "| **seckill** | until sold out | 650.0 |" in text
    assert text.endswith("## Reconciliation\n\nsomebody else's section\n")


def test_docs_update_leaves_a_file_without_markers_alone(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    assert not report.update_docs(_build(_results()), doc)
    assert doc.read_text() == "# Benchmarks\n"


def test_the_wrk_script_is_there_and_stops_on_sold_out():
    text = LUA_SCRIPT.read_text()
    assert "wrk.thread:stop()" in text
    assert "BENCH_JSON" in text
    assert "numbers.txt" in text  # every 2xx answer's order number, for the lost acks


def test_summarize_counts_acks_and_the_numbers_kept():
    raw = _raw([{"201": 3, "409": 1}, {"202": 2}], stopped=(True, False))
    raw["numbers"] = ["FS-A", "FS-B", "FS-C", "FS-D", "FS-E", "FS-F"]  # one 2xx after the thread stopped counting
    s = summarize(raw)
    assert (s["acks"], s["acks_with_number"]) == (5, 6)

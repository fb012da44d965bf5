"""Drive one phase with wrk and bench/wrk/purchase.lua, and turn its output into figures.

wrk's own report is not used for requests/s: when a phase stops at the sell-out, wrk
still counts its full wall time. The Lua script records, per thread, when it sent its
first request and when it saw its last counted response (monotonic clock), and the
rate is the responses counted over that span. Latency percentiles are wrk's (every
completed request of the phase). The script also hands back the order number of every
2xx answer (`numbers`), which bench/rounds.py looks up once the writer has drained.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.stack import ROOT

LUA_SCRIPT = ROOT / "bench" / "wrk" / "purchase.lua"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
BODY = '{"quantity": 1}'

# Answers that are part of the business (a refusal the client understands), not failures.
BUSINESS_STATUSES = {200, 201, 202, 409, 429}


def wrk_version():
    out = subprocess.run([WRK, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].split(" Copyright")[0].strip() if text else "wrk"


def run_wrk(
    url, tokens_file, *, threads, connections, duration_s, stop_on_sold_out, offset=0, timeout_s=10, stack=None
):
    """One wrk run; returns the parsed BENCH_JSON plus wall time and wrk's own CPU seconds."""
    stop_dir = Path(tempfile.mkdtemp(prefix="bench-wrk-stop-"))
    out_path = stop_dir / "wrk.out"
    argv = [
        WRK,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(int(duration_s), 1)}s",
        "--timeout",
        f"{timeout_s}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(tokens_file),
        str(threads),
        BODY,
        "1" if stop_on_sold_out else "0",
        str(stop_dir),
        str(offset),
    ]
    started = time.monotonic()
    with open(out_path, "wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    service = stack.track("wrk", popen, out_path) if stack is not None else None
    interrupted = False
    try:
        while True:
            pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
            if pid:
                popen.returncode = os.waitstatus_to_exitcode(status)
                break
            if stop_on_sold_out and not interrupted and any(p.name.isdigit() for p in stop_dir.iterdir()):
                # A thread has seen the sell-out and stopped: end the whole run now (wrk prints its
                # report on SIGINT). A stopped thread leaves its connections open, and a gunicorn
                # sync worker lingers up to 2 s on each before closing it (close_graceful), which
                # would stall the threads still measuring.
                os.kill(popen.pid, signal.SIGINT)
                interrupted = True
            time.sleep(0.02)
    finally:
        if service is not None:
            stack.untrack(service)
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
    wall = time.monotonic() - started
    text = out_path.read_text(errors="replace")
    numbers_path = stop_dir / "numbers.txt"
    numbers = numbers_path.read_text().split() if numbers_path.exists() else []
    shutil.rmtree(stop_dir, ignore_errors=True)
    raw = None
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            raw = json.loads(line[len("BENCH_JSON ") :])
    if raw is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line (exit {popen.returncode}):\n{text[-3000:]}")
    raw["wall_s"] = wall
    raw["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
    raw["interrupted_at_sell_out"] = interrupted
    raw["numbers"] = numbers
    return raw


def summarize(raw):
    """Requests/s, latency percentiles (ms), answers by status and real errors from one wrk run."""
    threads = list(raw.get("threads", {}).values())
    responses = int(sum(t.get("responses") or 0 for t in threads))
    starts = [t["t_start"] for t in threads if t.get("t_start")]
    ends = [t["t_end"] for t in threads if t.get("t_end")]
    elapsed = (max(ends) - min(starts)) if starts and ends else 0.0
    answers = {}
    for t in threads:
        for code, count in (t.get("statuses") or {}).items():
            answers[str(int(float(code)))] = answers.get(str(int(float(code))), 0) + int(count)
    errors_in = raw.get("errors", {})
    socket_errors = {k: int(errors_in.get(k, 0)) for k in ("connect", "read", "write", "timeout")}
    server_errors = sum(n for code, n in answers.items() if int(code) >= 500)
    unexpected = sum(n for code, n in answers.items() if int(code) < 500 and int(code) not in BUSINESS_STATUSES)
    lat = raw.get("latency_us", {})
    wall = raw.get("wall_s") or 0.0
    return {
        "rps": round(responses / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(lat.get("p50", 0) / 1000, 1),
        "p95_ms": round(lat.get("p95", 0) / 1000, 1),
        "p99_ms": round(lat.get("p99", 0) / 1000, 1),
        "p999_ms": round(lat.get("p999", 0) / 1000, 1),
        "max_ms": round(lat.get("max", 0) / 1000, 1),
        "responses": responses,
        "elapsed_s": round(elapsed, 3),
        "answers": dict(sorted(answers.items())),
        "socket_errors": socket_errors,
        "server_errors": server_errors,
        "unexpected_statuses": unexpected,
        "errors": sum(socket_errors.values()) + server_errors + unexpected,
        "sold_out_seen_by_threads": sum(1 for t in threads if t.get("stopped")),
        "acks": sum(n for code, n in answers.items() if 200 <= int(code) < 300),
        "acks_with_number": len(raw.get("numbers") or []),
        "wrk_cpu_s": round(raw.get("wrk_cpu_s", 0.0), 3),
        "wrk_cpu_pct_of_one_core": round(100 * raw.get("wrk_cpu_s", 0.0) / wall, 1) if wall else 0.0,
        "wall_s": round(wall, 3),
    }

"""A web server whose clock is skewed (libfaketime)."""

import os
import time

from django.utils import timezone

from chaos.driver import Client, buyers_loop, together
from chaos.scenarios.harness import Recorder, RunResult, finish, new_sale, purchase_path

# --- Clock skew on one worker ------------------------------------------------------------------


def clock_skew(ctx, rng):
    """A web server whose clock runs two hours ahead (libfaketime) cannot open the sale early:
    the window is checked against Redis's clock. Nothing oversells."""
    result = RunResult()
    with ctx.stack("clock-skew", web_workers=2) as s:
        s.start_redis()
        s.start_web()
        skewed_port = s.web_port + 1
        s.start_web(env=faketime_env("+2h"), port=skewed_port, name="web-skewed", worker_timeout=0)
        result.faults += 1
        s.start_writer()  # no wait: the early requests below must come before the start
        activity = new_sale(units=30, starts_in=5)
        recorder = Recorder()
        early = together(
            [
                lambda t=t: Client(skewed_port, t).request("POST", purchase_path(activity), body={"quantity": 1})
                for _, t in ctx.customers[:30]
            ]
        )
        opened_early = [a for a in early if a.status in (201, 202)]
        if opened_early:
            result.violations.append(f"the skewed server sold {len(opened_early)} units before the start")
        if any(a.code != "not_started" for a in early if not isinstance(a, BaseException)):
            result.violations.append(f"before the start the skewed server should answer not_started: {early[:2]}")
        result.notes.append(f"before the start the skewed server answered {sorted({a.code for a in early})}")
        s.wait_writers_reading()
        while timezone.now() < activity.starts_at:
            time.sleep(0.1)
        tokens = [t for _, t in ctx.customers[30:150]]
        halves = [(s.web_port, tokens[0::2]), (skewed_port, tokens[1::2])]
        together(
            [
                lambda port=port, share=share: buyers_loop(
                    port, share, purchase_path(activity), until=recorder.sold_out.is_set, on_answer=recorder, threads=6
                )
                for port, share in halves
            ]
        )
        return finish(result, activity, s, ctx, recorder)


def faketime_env(offset):
    candidates = [f"/usr/lib/{arch}-linux-gnu/faketime/libfaketime.so.1" for arch in ("x86_64", "aarch64")]
    library = next((p for p in candidates if os.path.exists(p)), None)
    if library is None:
        raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
    # The monotonic clock is shifted too: Python's time.sleep() waits on an absolute
    # CLOCK_MONOTONIC deadline, which libfaketime rejects (EINVAL) when only one side is faked.
    return {"LD_PRELOAD": library, "FAKETIME": offset}

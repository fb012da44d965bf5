"""Faults of Redis: restarted empty mid-sale, or paused for 5 s."""

import time

from chaos.driver import Client, together
from chaos.scenarios.harness import Recorder, RunResult, finish, later, new_sale, purchase_path, sale_under_fault

# --- Redis restarted empty mid-sale -----------------------------------------------------------


def redis_restart_empty(ctx, rng):
    """Redis loses everything mid-sale (SHUTDOWN NOSAVE, started again empty): purchases
    answer 503 for a moment, the first one after the restart warms the sale up again from
    the database, and nothing oversells."""

    def fault(s, result):
        s.restart_redis_empty()
        result.faults += 1

    def after(s, result, recorder):
        result.notes.append(f"{recorder.count(lambda a: a.status == 503)} answers were 503 unavailable")

    return sale_under_fault(ctx, rng, "redis-restart", units=60, buyers=200, fault=fault, when=(0.1, 0.6), after=after)


# --- Redis paused for 5 s -----------------------------------------------------------------------


def redis_paused(ctx, rng):
    """Bounded client timeouts: answers keep coming (503 while Redis is away), no 500 storm."""
    result = RunResult()
    with ctx.stack("redis-paused") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=80)
        recorder = Recorder()
        durations = []

        def fault():
            s.pause(s.redis, 5.0)
            result.faults += 1

        thread = later(rng, 0.1, 0.3, fault)

        def hammer(client):
            end = time.monotonic() + 7
            while time.monotonic() < end and not recorder.sold_out.is_set():
                started = time.monotonic()
                answer = client.request("POST", purchase_path(activity), body={"quantity": 1})
                durations.append(time.monotonic() - started)
                recorder(client.token, answer)
                if answer.status in (201, 409):
                    return
                time.sleep(0.05)

        clients = [Client(s.web_port, t, timeout=20) for _, t in ctx.customers[:40]]
        together([lambda c=c: hammer(c) for c in clients])
        thread.join()
        worst = max(durations, default=0)
        result.notes.append(f"slowest answer {worst:.1f} s; {recorder.count(lambda a: a.status == 503)} x 503")
        if worst > 8:
            result.violations.append(f"an answer took {worst:.1f} s while Redis was paused (bound: 8 s)")
        return finish(result, activity, s, ctx, recorder)

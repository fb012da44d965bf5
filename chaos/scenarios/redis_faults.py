"""Faults of Redis: restarted empty mid-sale (gracefully or killed), restarted from its
appendonly file while intents wait for the writers, or paused for 5 s."""

import os
import signal
import time

from chaos.checks import acknowledged_numbers
from chaos.driver import Client, together
from chaos.scenarios.harness import Recorder, RunResult, finish, later, new_sale, purchase_path, sale_under_fault
from seckill import keys

# --- Redis restarted empty mid-sale (committed mode) ---------------------------------------------


def redis_restart_empty(ctx, rng):
    """Redis loses everything mid-sale (SHUTDOWN NOSAVE, started again empty) while purchases
    are acknowledged at COMMIT (SECKILL_ACK=committed): purchases answer 503 for a moment,
    the first one after the restart warms the sale up again from the database, nothing
    oversells and no 2xx answer lacks its order."""

    def fault(s, result):
        s.restart_redis_empty()
        result.faults += 1

    def after(s, result, recorder):
        result.notes.append(f"{recorder.count(lambda a: a.status == 503)} answers were 503 unavailable")

    return sale_under_fault(ctx, rng, "redis-restart", units=60, buyers=200, fault=fault, when=(0.1, 0.6), after=after)


def redis_killed_committed(ctx, rng):
    """Redis SIGKILLed mid-sale with nothing on disk (appendonly no) and started again empty,
    in committed mode, with two writers holding intents: an intent lost with Redis had not
    been acknowledged yet (its request was waiting for the COMMIT and answers 503); one the
    writer had already read is committed and counted by the re-warm from the database.
    503s are fine; no 2xx answer may lack its order; the sale sells on after the re-warm."""
    mark = {}

    def fault(s, result):
        mark["answers"] = len(s.recorder.answers)
        s.kill_redis()
        result.faults += 1

    def after(s, result, recorder):
        after_restart = acknowledged_numbers(recorder.answers[mark.get("answers", 0) :])
        result.notes.append(
            f"{recorder.count(lambda a: a.status == 503)} x 503; {len(after_restart)} units acknowledged after "
            f"the restart (re-warmed from the DB)"
        )

    return sale_under_fault(
        ctx, rng, "redis-killed", units=100, buyers=250, fault=fault, when=(0.1, 0.5), writers=2, after=after
    )


# --- Redis restarted from its AOF while intents wait (reserved mode) -----------------------------------


def redis_restart_aof(ctx, rng):
    """SECKILL_ACK=reserved on a Redis with appendonly yes, appendfsync always: the writers are
    frozen (SIGSTOP) while purchases are acknowledged 202 confirming, so the intents wait
    in the stream; Redis is SIGKILLed and started again from its appendonly file; the
    writers resume. Every intent is still in the stream after the restart (fsynced before
    its answer), every 202 becomes its order: zero lost acknowledgements."""

    def fault(s, result):
        for w in s.writers:
            os.kill(w.pid, signal.SIGSTOP)
        try:
            time.sleep(rng.uniform(0.3, 0.8))  # purchases accepted meanwhile: 202, their intents wait
            before = s.client().xlen(keys.intents(s.activity_id))
            s.kill_redis()
            kept = s.client().xlen(keys.intents(s.activity_id))
            result.faults += 1
            result.notes.append(f"{before} intent(s) waited when Redis was killed; {kept} were there after the restart")
            if kept < before:
                result.violations.append(f"the AOF restart lost {before - kept} intent(s)")
            if not before:
                result.violations.append("no intent waited when Redis was killed: the fault did not bite")
            time.sleep(rng.uniform(0.1, 0.5))
        finally:
            for w in s.writers:
                os.kill(w.pid, signal.SIGCONT)

    return sale_under_fault(
        ctx, rng, "redis-aof", units=120, buyers=250, fault=fault, when=(0.0, 0.1), writers=2, aof=True,
        extra={"SECKILL_ACK": "reserved"},
    )  # fmt: skip


# --- Redis paused for 5 s -----------------------------------------------------------------------


def redis_paused(ctx, rng):
    """Bounded client timeouts: answers keep coming (503 while Redis is away), no 500 storm."""
    result = RunResult()
    with ctx.stack("redis-paused") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=80)
        s.start_writer(activity.pk)
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
                if answer.status in (201, 202, 409):
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

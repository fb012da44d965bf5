"""Faults of the web processes: a gunicorn worker frozen past the customer lock's lease,
killed mid-request, or killed between the steps of an async purchase."""

import threading
import time

from chaos.driver import buyers_loop
from chaos.scenarios.harness import Recorder, RunResult, finish, kill, new_sale, purchase_path, sale_under_fault

# --- Lock holder paused past its TTL -------------------------------------------------------


def pause_past_ttl(ctx, rng):
    """A web worker is frozen (SIGSTOP) mid-purchase for the customer lock's lease plus 1 s,
    while the same customers keep buying from three tabs each: a newer holder takes the
    lock, and the frozen one's late write is fenced or refused by the DB."""

    def fault(s, result):
        s.pause(rng.choice(s.web_worker_pids()), float(s.env["SECKILL_CUSTOMER_LOCK_TTL"]) + 1.0)
        result.faults += 1

    return sale_under_fault(ctx, rng, "pause-past-ttl", units=30, buyers=90, tabs=3, fault=fault, when=(0.05, 0.4))


# --- Crash between DB commit and enqueue / between Lua reservation and DB write -----------------


def crash_between_steps(ctx, rng):
    """Web processes SIGKILLed at random moments while async purchases run: a kill after the
    ticket commit loses the Celery message (the re-drive sends it again), a kill after the
    Lua reservation strands a unit (the stranded sweep gives it back)."""
    result = RunResult()
    with ctx.stack("crash-between-steps", extra={"SECKILL_ORDER_MODE": "async"}) as s:
        s.start_redis()
        s.start_web()
        s.start_worker()
        activity = new_sale(units=60)
        recorder = Recorder()
        stop = threading.Event()

        def killer():
            while not stop.is_set() and result.faults < 6:
                time.sleep(rng.uniform(0.05, 0.25))
                pids = s.web_worker_pids()
                if pids:
                    kill(rng.choice(pids))
                    result.faults += 1

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        buyers_loop(
            s.web_port,
            [t for _, t in ctx.customers[:200]],
            purchase_path(activity),
            until=recorder.sold_out.is_set,
            on_answer=recorder,
        )
        stop.set()
        thread.join()
        cut = recorder.count(lambda a: a.status == 0 or a.resent)
        result.notes.append(f"{cut} requests were cut off by a kill (and sent again by the buyer)")
        return finish(result, activity, s, ctx, recorder, async_mode=True)


# --- gunicorn worker SIGKILLed mid-request ---------------------------------------------------


def web_worker_killed(ctx, rng):
    """Web workers killed mid-request (sync mode): a reservation whose order was never
    written is given back by the stranded sweep, so every unit still sells."""

    def fault(s, result):
        for _ in range(3):
            pids = s.web_worker_pids()
            if pids:
                kill(rng.choice(pids))
                result.faults += 1
            time.sleep(rng.uniform(0.02, 0.15))

    return sale_under_fault(ctx, rng, "web-killed", units=50, buyers=160, fault=fault, when=(0.05, 0.3))

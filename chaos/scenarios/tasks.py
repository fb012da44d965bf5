"""Faults of the background jobs: a Celery worker killed mid-task, a task delivered
more than once, two beat schedulers firing every job twice (async mode where it applies)."""

import time
from datetime import timedelta

from django.utils import timezone

from bench.stack import children_of
from chaos.checks import live_units
from chaos.driver import buyers_loop
from chaos.scenarios.harness import Recorder, RunResult, finish, kill, new_sale, purchase_path, sale_under_fault
from orders.models import Order

# --- Celery worker SIGKILLed mid-task (async mode) ---------------------------------------------


def worker_killed(ctx, rng):
    """Every 202 still gets its order exactly once: acks_late + reject_on_worker_lost requeue the
    task of a killed pool process; a worker killed outright leaves its messages to be
    redelivered after the visibility timeout, or re-driven from the pending tickets."""
    whole = rng.random() < 0.5

    def fault(s, result):
        worker = s.workers[0]
        for pid in ([worker.pid] if whole else []) + children_of(worker.pid):
            kill(pid)
        result.faults += 1

    def after(s, result, recorder):
        if whole:
            s.start_worker(name="worker-replacement")
        result.notes.append("killed the whole worker" if whole else "killed the pool processes")

    return sale_under_fault(
        ctx, rng, "worker-killed", units=60, buyers=150, fault=fault, extra={"SECKILL_ORDER_MODE": "async"},
        workers=1, async_mode=True, after=after,
    )  # fmt: skip


# --- A task delivered twice --------------------------------------------------------------------


def task_delivered_twice(ctx, rng):
    """Each ticket's task is sent three times, to two workers; one order per ticket."""
    result = RunResult()
    with ctx.stack("task-twice", extra={"SECKILL_ORDER_MODE": "async"}) as s:
        s.start_redis()
        s.start_web()
        s.start_worker(name="worker-a")
        s.start_worker(name="worker-b")
        activity = new_sale(units=50)
        recorder = Recorder()
        buyers_loop(
            s.web_port,
            [t for _, t in ctx.customers[:120]],
            purchase_path(activity),
            until=recorder.sold_out.is_set,
            on_answer=recorder,
        )
        app = celery_app_for(s)
        for answer in recorder.answers:
            if answer.status == 202:
                ticket = answer.body["ticket"].partition("-")[2]
                for _ in range(2):
                    app.send_task("seckill.tasks.fulfil_ticket", args=[ticket])
                    result.faults += 1
        return finish(result, activity, s, ctx, recorder, async_mode=True)


def celery_app_for(stack_):
    from celery import Celery

    app = Celery("chaos", broker=stack_.env["CELERY_BROKER_URL"])
    app.conf.broker_transport_options = {"visibility_timeout": 8}
    return app


# --- Two beat schedulers ----------------------------------------------------------------------


def two_beats(ctx, rng):
    """Two beat processes fire every job twice: each overdue order expires once (its units come
    back once) and each reconciliation tick produces one run."""
    from reconciliation.models import ReconciliationRun

    result = RunResult()
    overrides = {"BEAT_INTERVAL_OVERRIDES": "orders-expire-overdue=1,seckill-reconcile-nightly=2"}
    with ctx.stack("two-beats", extra=overrides) as s:
        s.start_redis()
        s.start_web()
        s.start_worker(concurrency=4)
        activity = new_sale(units=40)
        recorder = Recorder()
        buyers_loop(s.web_port, [t for _, t in ctx.customers[:40]], purchase_path(activity), until=lambda: False,
                    on_answer=recorder)  # fmt: skip
        Order.objects.filter(seckill__activity=activity).update(expires_at=timezone.now() - timedelta(seconds=1))
        runs_before = ReconciliationRun.objects.count()
        s.start_beat("beat-a")
        s.start_beat("beat-b")
        result.faults += 2
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and live_units(activity.pk):
            time.sleep(0.25)
        time.sleep(4)  # a few reconciliation ticks from both schedulers
        ticks = ReconciliationRun.objects.count() - runs_before
        overlapping = ReconciliationRun.overlapping_pairs() if hasattr(ReconciliationRun, "overlapping_pairs") else 0
        result.notes.append(f"{ticks} reconciliation runs in ~4 s from two schedulers")
        if overlapping:
            result.violations.append(f"{overlapping} reconciliation runs overlapped in time")
        expired = Order.objects.filter(seckill__activity=activity, status="expired").count()
        if expired != 40:
            result.violations.append(f"{expired} of 40 overdue orders expired")
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)

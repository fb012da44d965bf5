"""Faults of the periodic jobs: two beat schedulers firing every job twice."""

import time
from datetime import timedelta

from django.utils import timezone

from chaos.checks import drained, live_units
from chaos.driver import buyers_loop
from chaos.scenarios.harness import Recorder, RunResult, finish, new_sale, purchase_path
from orders import services as order_services
from orders.models import Order

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
        s.start_writer(activity.pk)
        recorder = Recorder()
        buyers_loop(s.web_port, [t for _, t in ctx.customers[:40]], purchase_path(activity), until=lambda: False,
                    on_answer=recorder)  # fmt: skip
        drained([activity.pk])
        # Orders of earlier scenarios whose deadline passed are expired first (oldest first is
        # how the sweep works), so that the beats' sweeps below have exactly this sale's 40.
        while order_services.expire_overdue_orders():
            pass
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

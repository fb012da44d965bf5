"""Faults of the web processes: gunicorn workers SIGKILLed mid-request, in either
acknowledgement level (seckill/purchase.py)."""

import threading
import time
from datetime import timedelta

from django.utils import timezone

from chaos.driver import buyers_loop
from chaos.scenarios.harness import Recorder, RunResult, finish, kill, new_sale, purchase_path, sale_under_fault
from orders import services as order_services
from orders.models import Order
from seckill.models import SeckillQuota

# --- Web workers killed between purchase.lua and the answer (reserved mode) ---------------------


def crash_between_steps(ctx, rng):
    """Web processes SIGKILLed at random moments while purchases run with SECKILL_ACK=reserved:
    a kill after purchase.lua has already put the order intent in the sale's stream, in the
    same step as the reservation, so the writer writes that order although its customer got
    no answer; the customer's retry is answered limit_reached and the order is there. No
    unit is stranded. After the sell-out three orders expire: the mop-up sells their units
    although every web process still holds its sold-out flag (the units-back message)."""
    result = RunResult()
    with ctx.stack("crash-between-steps", extra={"SECKILL_ACK": "reserved"}) as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=60)
        s.start_writer(activity.pk)
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
        finish(result, activity, s, ctx, recorder, before_mop=lambda: _units_back(activity, rng, result))
        _check_cut_off_customers(ctx, activity, recorder, result)
        return result


def _units_back(activity, rng, result, count=3):
    """After the sell-out, a few orders expire: their units go back to Redis (restock.lua,
    which publishes on the units-back channel). Every web process still holds its sold-out
    flag (30 s in the chaos stack), so the mop-up sells them only if that message cleared
    it: the issue's "a unit that comes back sells at once everywhere"."""
    numbers = list(
        Order.objects.filter(seckill__activity=activity, status=Order.Status.PENDING_PAYMENT).values_list(
            "number", flat=True
        )
    )
    past = timezone.now() - timedelta(seconds=1)
    for number in rng.sample(numbers, min(count, len(numbers))):
        Order.objects.filter(number=number).update(expires_at=past)
        order_services.order_expire(order=Order.objects.get(number=number))
    result.notes.append(f"{min(count, len(numbers))} orders expired after the sell-out; their units sold again")


def _check_cut_off_customers(ctx, activity, recorder, result):
    """A customer whose request was cut off and whose retry said limit_reached holds an order."""
    with recorder.lock:
        log = list(recorder.by_token)
    cut = {t for t, a in log if a.status == 0 or a.resent}
    acked = {t for t, a in log if a.status in (201, 202)}
    limited = {t for t, a in log if a.code == "limit_reached"} & cut - acked
    users = {token: user_id for user_id, token in ctx.customers}
    holders = set(
        SeckillQuota.objects.filter(activity_id=activity.pk, units_held__gt=0).values_list("user_id", flat=True)
    )
    without = [t for t in limited if users[t] not in holders]
    result.notes.append(
        f"{len(cut)} request(s) cut off by a kill; {len(limited)} of those customers found their order on retry"
    )
    if without:
        result.violations.append(f"{len(without)} cut-off customer(s) answered limit_reached hold no order")


# --- gunicorn worker SIGKILLed mid-request (committed mode) --------------------------------------


def web_worker_killed(ctx, rng):
    """Web workers killed mid-request (SECKILL_ACK=committed, the default): a request killed
    while it waits for the writer's COMMIT leaves an intent that still becomes its order; a
    reservation without an order would be given back by the stranded sweep. Every unit sells,
    and no 2xx answer lacks its order."""

    def fault(s, result):
        for _ in range(3):
            pids = s.web_worker_pids()
            if pids:
                kill(rng.choice(pids))
                result.faults += 1
            time.sleep(rng.uniform(0.02, 0.15))

    return sale_under_fault(ctx, rng, "web-killed", units=50, buyers=160, fault=fault, when=(0.05, 0.3))

"""Races between requests: a payment against the expiry of the same order, and one
customer's storm of duplicate clicks."""

import time
from datetime import timedelta

from django.utils import timezone

from chaos.checks import drained
from chaos.driver import Client, buyers_loop, together
from chaos.scenarios.harness import Recorder, RunResult, finish, new_sale, purchase_path
from core.errors import ShopError
from orders import services as order_services
from orders.models import Order
from seckill import services

# --- Payment racing expiry, 200 times ---------------------------------------------------------


def pay_vs_expiry(ctx, rng, races=200):
    """Each order is paid over HTTP at the instant the expiry runs for it: one outcome each
    time (paid or expired, never both, never neither), and the units of the expired
    ones come back exactly once."""
    result = RunResult()
    with ctx.stack("pay-vs-expiry") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=races)
        s.start_writer(activity.pk)
        recorder = Recorder()
        customers = ctx.customers[:races]
        clients = {t: Client(s.web_port, t) for _, t in customers}
        buyers_loop(s.web_port, [t for _, t in customers], purchase_path(activity), until=lambda: False,
                    on_answer=recorder)  # fmt: skip
        drained([activity.pk])
        orders = {a.body["order"]["number"]: a for a in recorder.answers if a.status in (201, 202)}
        tokens = dict(customers)
        by_number = dict(Order.objects.filter(number__in=orders).values_list("number", "user_id"))
        for number, user_id in by_number.items():
            client = clients[tokens[user_id]]
            # The payment arrives before the deadline and the expiry runs as of the deadline:
            # both are valid on their own, and only the version check decides.
            deadline = timezone.now() + timedelta(milliseconds=500)
            Order.objects.filter(number=number).update(expires_at=deadline)
            order = Order.objects.get(number=number)

            def pay(client=client, number=number):
                return client.request("POST", f"/api/orders/{number}/pay/")

            head_start = rng.uniform(0, 0.015)

            def expire(order=order, deadline=deadline, head_start=head_start):
                time.sleep(head_start)  # the HTTP payment takes a few ms to arrive; vary who is first
                try:
                    return order_services.order_expire(order=order, now=deadline + timedelta(milliseconds=1))
                except ShopError as exc:
                    return exc

            together([pay, expire])
            result.faults += 1
        statuses = dict(Order.objects.filter(number__in=orders).values_list("number", "status"))
        both = [n for n, st in statuses.items() if st not in ("paid", "expired")]
        if both:
            result.violations.append(f"orders neither paid nor expired: {both[:3]}")
        paid = sum(1 for st in statuses.values() if st == "paid")
        result.notes.append(f"{paid} paid, {len(statuses) - paid} expired")
        if not 0 < paid < len(statuses):
            result.violations.append(f"not a race: {paid} of {len(statuses)} paid")
        services.activity_resync(activity_id=activity.pk)
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)


# --- Duplicate-click storm --------------------------------------------------------------------


def click_storm(ctx, rng):
    """One customer, 50 parallel requests from 5 tabs (5 idempotency keys): one order."""
    result = RunResult()
    with ctx.stack("click-storm") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=10)
        s.start_writer(activity.pk)
        recorder = Recorder()
        _, token = ctx.customers[rng.randrange(len(ctx.customers))]
        keys = [f"tab-{rng.randrange(10**9)}" for _ in range(5)]

        def click(i):
            answer = Client(s.web_port, token).request(
                "POST", purchase_path(activity), body={"quantity": 1}, headers={"Idempotency-Key": keys[i % 5]}
            )
            recorder(token, answer)
            return answer

        answers = together([lambda i=i: click(i) for i in range(50)])
        result.faults = 50
        numbers = {a.body["order"]["number"] for a in answers if a.status in (201, 202)}
        if len(numbers) != 1:
            result.violations.append(f"the storm produced {len(numbers)} distinct orders")
        odd = [a.status for a in answers if a.status not in (201, 202, 409, 429)]
        if odd:
            result.violations.append(f"unexpected answers: {odd[:5]}")
        result.notes.append(f"answers: {sorted({a.status for a in answers})}")
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)

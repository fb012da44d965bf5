"""I1-I5 (docs/architecture.md) and lost acknowledgements, read straight from MariaDB and Redis
after a scenario settled.

Each check returns a list of violations (sentences); an empty list means it holds.
The queries are independent of the reconciliation code they help to test.

A lost acknowledgement is a 2xx answer (201 with the order, 202 "confirming" with the
order number) whose order does not exist once the writers have drained every intent
(the sale's stream is empty, XLEN 0): the customer was told "yours" and has nothing.
"""

import time
from collections import Counter

from django.db.models import Sum

from orders.models import Order
from seckill import keys, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillRefusal
from shop.models import Product


def acknowledged_numbers(answers):
    """Order numbers of every 2xx answer (201 body order.number, 202 body order.number)."""
    return [
        a.body["order"]["number"]
        for a in answers
        if a.status in (201, 202) and isinstance(a.body, dict) and isinstance(a.body.get("order"), dict)
    ]


def lost_acknowledgements(answers):
    """Acknowledged order numbers with no Order row (call after drained())."""
    numbers = set(acknowledged_numbers(answers))
    found = set(Order.objects.filter(number__in=numbers).values_list("number", flat=True)) if numbers else set()
    return sorted(numbers - found)


def waiting_intents(activity_id):
    """Intents of the sale not settled yet (XLEN of its stream); None when Redis does not answer."""
    try:
        return stock.redis().xlen(keys.intents(activity_id))
    except Exception:  # noqa: BLE001 - Redis restarting: not drained yet
        return None


def drained(activity_ids, timeout=30.0):
    """Wait until every sale's intents stream is empty; True if it was within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if all(waiting_intents(i) == 0 for i in activity_ids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def sale_violations(activity_id, *, answers=(), expect_sell_out=False):
    activity = SeckillActivity.objects.get(pk=activity_id)
    total = activity.stock_total
    live = list(
        SeckillOrder.objects.filter(activity_id=activity_id, order__status__in=Order.LIVE_STATUSES).values_list(
            "user_id", "quantity", "order__number"
        )
    )
    sold = sum(q for _, q, _ in live)
    per_user = Counter()
    for user_id, quantity, _ in live:
        per_user[user_id] += quantity
    found = []

    # I1
    if sold > total:
        found.append(f"I1: {sold} units in live orders for a sale of {total}")
    if activity.stock_available != total - sold:
        found.append(f"I1: DB pool says {activity.stock_available} left, orders say {total - sold}")
    negative = list(Product.objects.filter(stock__lt=0).values_list("slug", flat=True))
    if negative:
        found.append(f"I1: negative product stock: {negative}")

    # I2
    if expect_sell_out and sold != total:
        found.append(f"I2: demand exceeded stock but only {sold} of {total} units sold")

    # I3
    over = {u: n for u, n in per_user.items() if n > activity.per_user_limit}
    if over:
        found.append(f"I3: customers over the limit of {activity.per_user_limit}: {over}")
    quotas = dict(
        SeckillQuota.objects.filter(activity_id=activity_id, units_held__gt=0).values_list("user_id", "units_held")
    )
    if quotas != dict(per_user):
        found.append("I3: quota rows disagree with live orders")

    # I4: every acknowledgement has its order; no intent became two orders or was both
    # written and refused (a refusal gives the unit back, so that would sell it twice).
    lost = lost_acknowledgements(answers)
    if lost:
        found.append(f"I4: {len(lost)} lost acknowledgement(s): 2xx answered, no order, e.g. {lost[:3]}")
    links = list(SeckillOrder.objects.filter(activity_id=activity_id).values_list("reservation_id", flat=True))
    twice = [r for r, n in Counter(links).items() if n > 1]
    if twice:
        found.append(f"I4: reservations with more than one order: {twice[:3]}")
    both = list(
        SeckillRefusal.objects.filter(activity_id=activity_id, reservation_id__in=links).values_list(
            "reservation_id", flat=True
        )
    )
    if both:
        found.append(f"I4: {len(both)} intent(s) both written and refused, e.g. {both[:3]}")

    # I5
    remaining = stock.remaining(activity_id)
    if remaining is None:
        found.append("I5: the sale is not in Redis after the settle (it should have been warmed again)")
    else:
        entries = list(stock.reservations(activity_id))
        settled = set(
            SeckillOrder.objects.filter(reservation_id__in=[e.reservation_id for e in entries]).values_list(
                "reservation_id", flat=True
            )
        )
        open_units = sum(e.quantity for e in entries if e.reservation_id not in settled)
        if remaining + sold + open_units != total:
            found.append(f"I5: Redis {remaining} + sold {sold} + open {open_units} != {total}")
    return found


def live_units(activity_id):
    return (
        SeckillOrder.objects.filter(activity_id=activity_id, order__status__in=Order.LIVE_STATUSES).aggregate(
            n=Sum("quantity")
        )["n"]
        or 0
    )

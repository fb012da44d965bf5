"""I1-I5 (docs/architecture.md) read straight from MariaDB and Redis after a scenario settled.

Each check returns a list of violations (sentences); an empty list means it holds.
The queries are independent of the reconciliation code they help to test.
"""

from collections import Counter

from django.db.models import Sum

from orders.models import Order
from seckill import stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillTicket
from shop.models import Product


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

    # I4
    numbers = {n for _, _, n in live}
    accepted = [a.body["order"]["number"] for a in answers if a.status == 201 and "order" in a.body]
    lost = [n for n in accepted if n not in numbers and not Order.objects.filter(number=n).exists()]
    if lost:
        found.append(f"I4: {len(lost)} answered 201 without an order row, e.g. {lost[:3]}")
    tickets = [a.body["ticket"].partition("-")[2] for a in answers if a.status == 202]
    if tickets:
        done = dict(SeckillTicket.objects.filter(pk__in=tickets).values_list("pk", "status"))
        not_done = [t for t in tickets if done.get(t) != SeckillTicket.Status.DONE]
        if not_done:
            found.append(f"I4: {len(not_done)} answered 202 without their order, e.g. {not_done[:3]}")
        orders_per_ticket = Counter(
            SeckillOrder.objects.filter(reservation_id__in=tickets).values_list("reservation_id", flat=True)
        )
        twice = [t for t, n in orders_per_ticket.items() if n > 1]
        if twice:
            found.append(f"I4: tickets with more than one order: {twice[:3]}")

    # I5
    remaining = stock.remaining(activity_id)
    if remaining is not None:
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

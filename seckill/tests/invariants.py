"""I1-I5 of docs/architecture.md, computed straight from the tables and Redis for the tests.

Deliberately independent of the reconciliation code, so a bug there cannot hide here.
"""

from collections import Counter

from django.db.models import Sum

from orders.models import Order, OrderItem
from seckill import keys, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota


def live_links(activity):
    return SeckillOrder.objects.filter(activity=activity, order__status__in=Order.LIVE_STATUSES)


def sale_state(activity):
    activity = SeckillActivity.objects.get(pk=activity.pk)
    links = list(live_links(activity).values_list("user_id", "quantity", "reservation_id"))
    per_user = Counter()
    for user_id, quantity, _ in links:
        per_user[user_id] += quantity
    settled = {rid for _, _, rid in links} | set(
        SeckillOrder.objects.filter(activity=activity).values_list("reservation_id", flat=True)
    )
    open_units = sum(r.quantity for r in stock.reservations(activity.pk) if r.reservation_id not in settled)
    return {
        "total": activity.stock_total,
        "returned": activity.stock_returned,
        "sold": sum(per_user.values()),
        "db_available": activity.stock_available,
        "redis_remaining": stock.remaining(activity.pk),
        "open_reservations": open_units,
        "per_user": per_user,
        "limit": activity.per_user_limit,
        "orders": len(links),
    }


def assert_invariants(activity, *, expect_sold=None):
    s = sale_state(activity)
    # I1: no oversell, and the DB pool agrees with the orders.
    assert s["sold"] <= s["total"], s
    assert s["db_available"] == s["total"] - s["returned"] - s["sold"], s
    # I3: nobody above the limit, and the DB quota rows agree with the orders.
    assert all(units <= s["limit"] for units in s["per_user"].values()), s
    quotas = dict(SeckillQuota.objects.filter(activity=activity, units_held__gt=0).values_list("user_id", "units_held"))
    assert quotas == dict(s["per_user"]), (quotas, s)
    # I4: every link has its order and its one item with the same quantity.
    for link in SeckillOrder.objects.filter(activity=activity).select_related("order"):
        items = list(OrderItem.objects.filter(order=link.order).values_list("quantity", flat=True))
        assert items == [link.quantity], (link.order.number, items)
    # I5: conservation between the DB and Redis.
    if s["redis_remaining"] is not None:
        assert s["redis_remaining"] + s["sold"] + s["open_reservations"] + s["returned"] == s["total"], s
        held = {int(k): int(v) for k, v in stock.redis().hgetall(keys.users(activity.pk)).items()}
        assert all(v <= s["limit"] for v in held.values()), held
    if expect_sold is not None:
        assert s["sold"] == expect_sold, s
    return s


def total_units(activity):
    return live_links(activity).aggregate(units=Sum("quantity"))["units"] or 0

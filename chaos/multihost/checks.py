"""I1-I5 (docs/architecture.md) and lost acknowledgements for a bucketed sale, after the run
settled, read from MariaDB, and from what the buyers were answered.

Redis's side (reserve + buckets + transfers in flight + open reservations + orders =
stock, per sale) is `manage.py reconcile`'s, which run.py calls on a host afterwards,
as staff would. Here: the database and the answers. Each function returns violations
(sentences); an empty list means the invariant holds.
"""

from collections import Counter, defaultdict

from orders.models import Order
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillRefusal, SeckillStockBucket
from shop.models import Product


def database_violations(activity_id, *, expect_sell_out=True):
    activity = SeckillActivity.objects.get(pk=activity_id)
    total, limit = activity.stock_total, activity.per_user_limit
    live = list(
        SeckillOrder.objects.filter(activity_id=activity_id, order__status__in=Order.LIVE_STATUSES).values_list(
            "user_id", "quantity"
        )
    )
    sold = sum(q for _, q in live)
    per_user = Counter()
    for user_id, quantity in live:
        per_user[user_id] += quantity
    found = []
    if sold > total:
        found.append(f"I1: {sold} units in live orders for a sale of {total}")
    rows = list(SeckillStockBucket.objects.filter(activity_id=activity_id).values_list("stock_available", flat=True))
    pool = activity.stock_available + sum(rows)
    if pool != total - sold:
        found.append(f"I1: DB pool (reserve {activity.stock_available} + buckets {rows}) != {total} - {sold} sold")
    if min([activity.stock_available, *rows]) < 0:
        found.append(f"I1: a negative pool row: reserve {activity.stock_available}, buckets {rows}")
    if Product.objects.filter(pk=activity.product_id, stock__lt=0).exists():
        found.append("I1: the product's stock is negative")
    if expect_sell_out and sold != total:
        found.append(f"I2: demand exceeded stock but {sold} of {total} units sold")
    over = {u: n for u, n in per_user.items() if n > limit}
    if over:
        found.append(f"I3: {len(over)} customer(s) over the limit of {limit}, e.g. {list(over.items())[:3]}")
    quotas = dict(
        SeckillQuota.objects.filter(activity_id=activity_id, units_held__gt=0).values_list("user_id", "units_held")
    )
    if quotas != dict(per_user):
        found.append("I3: quota rows disagree with live orders")
    links = list(SeckillOrder.objects.filter(activity_id=activity_id).values_list("reservation_id", flat=True))
    twice = [r for r, n in Counter(links).items() if n > 1]
    if twice:
        found.append(f"I4: {len(twice)} reservation(s) with more than one order, e.g. {twice[:3]}")
    both = SeckillRefusal.objects.filter(activity_id=activity_id, reservation_id__in=links).count()
    if both:
        found.append(f"I4: {both} intent(s) both written and refused")
    return found, {"sold": sold, "customers_with_orders": len(per_user), "pool_rows": [activity.stock_available, *rows]}


def server_errors(answers_by_code):
    """Answers with a 5xx other than 503: a dependency outage must be a 503, never a 500."""
    bad = {}
    for counts in answers_by_code.values():
        for label, n in counts.items():
            status = int(label.split()[0])
            if status >= 500 and status != 503:
                bad[label] = bad.get(label, 0) + n
    return [f"{sum(bad.values())} answer(s) with a server error other than 503: {bad}"] if bad else []


def answer_violations(activity_id, finals):
    """What the customers were told against what exists.

    A 201 is only sent after the order's COMMIT: one without an order is a lost
    acknowledgement, always a violation. A 202 ("confirming") promises an order being
    written: once the streams are drained it must exist too; one that does not is
    counted apart (`unconfirmed_lost`), since docs/scale-out.md says a failover may lose an
    intent not yet written whose request was answered 202 after the wait. Two purchases
    (two Idempotency-Keys) answered with the same order, or one key answered with two
    orders across hosts, are double sales. An order that no purchase was answered with
    means a retry under its key was told something else (sold_out, say) although the
    first attempt had bought it.
    """
    found = []
    acked = [f for f in finals if f["status"] in (201, 202) and f["order"]]
    numbers = {f["order"] for f in acked}
    orders = dict(
        SeckillOrder.objects.filter(activity_id=activity_id, order__number__in=numbers).values_list(
            "order__number", "user_id"
        )
    )
    lost_201 = [f["order"] for f in acked if f["status"] == 201 and f["order"] not in orders]
    lost_202 = [f["order"] for f in acked if f["status"] == 202 and f["order"] not in orders]
    if lost_201:
        found.append(f"I4: {len(lost_201)} lost acknowledgement(s): 201 answered, no order, e.g. {lost_201[:3]}")
    if lost_202:
        found.append(f"I4: {len(lost_202)} order(s) answered 202 confirming never written, e.g. {lost_202[:3]}")
    wrong_owner = [f["order"] for f in acked if f["order"] in orders and orders[f["order"]] != f["user_id"]]
    if wrong_owner:
        found.append(f"I4: {len(wrong_owner)} acknowledgement(s) name another customer's order")
    by_number = Counter(f["order"] for f in acked)
    shared = [n for n, c in by_number.items() if c > 1]
    if shared:
        found.append(f"I4: {len(shared)} order(s) acknowledged to two purchases, e.g. {shared[:3]}")
    per_customer = defaultdict(set)
    for f in acked:
        per_customer[f["user_id"]].add(f["order"])
    limit = SeckillActivity.objects.values_list("per_user_limit", flat=True).get(pk=activity_id)
    over = [u for u, n in per_customer.items() if len(n) > limit]
    if over:
        found.append(f"I3: {len(over)} customer(s) acknowledged more than {limit} orders")
    gave_up = sum(1 for f in finals if f["code"] == "gave_up")
    if gave_up:
        found.append(f"{gave_up} purchase(s) got no final answer before the deadline")
    all_orders = SeckillOrder.objects.filter(activity_id=activity_id).count()
    unanswered = all_orders - len(numbers & set(orders))
    if unanswered:  # a purchase that went through but whose retry was told something else
        found.append(f"I4: {unanswered} order(s) exist whose purchase was never answered with them")
    stats = {
        "acknowledged": len(acked),
        "acknowledged_201": sum(1 for f in acked if f["status"] == 201),
        "acknowledged_202": sum(1 for f in acked if f["status"] == 202),
        "lost_acknowledgements": len(lost_201),
        "unconfirmed_lost": len(lost_202),
        "orders_never_acknowledged": unanswered,
        "answered_by_replay": sum(1 for f in acked if f.get("replayed")),
        "final_refusals": dict(Counter(f["code"] for f in finals if f["status"] not in (201, 202))),
        "purchases_that_changed_host": sum(1 for f in finals if f.get("hops")),
    }
    return found, stats

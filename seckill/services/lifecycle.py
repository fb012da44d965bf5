"""A sale's life outside the purchase itself: publish, warm up, end now, re-sync Redis.

Publishing sets the sale's units aside from the product once (the sale row is locked
for the check-and-set); warming loads the sale into Redis from the database, which is
the truth, and never puts sold units back on sale (warm.lua writes only missing keys);
a re-sync rewrites the counters from one read view of the database.
"""

from datetime import timedelta

from django.db import connection
from django.db.models import F
from django.utils import timezone

from core.db import atomic_with_retry
from locks import LockAcquireTimeout, held, lock_for
from orders.services import take_stock
from seckill import cache, keys, stock
from seckill.conf import conf
from seckill.errors import Unavailable
from seckill.models import SeckillActivity, SeckillQuota


@atomic_with_retry()
def activity_publish(*, activity_id):
    """Set the sale's units aside from the product's free stock, once.

    The activity row is locked for the check-and-set, so two warm-ups racing publish
    once; the product's stock is taken with the same version-checked decrement as a
    checkout, so the sale can never set aside units the shop no longer has.
    Returns True if this call published it.
    """
    activity = SeckillActivity.objects.select_for_update().get(pk=activity_id)
    if activity.published_at is not None:
        return False
    take_stock(product_id=activity.product_id, quantity=activity.stock_total)
    SeckillActivity.objects.filter(pk=activity_id).update(
        stock_available=activity.stock_total, published_at=timezone.now()
    )
    return True


def _holders(activity_id):
    return list(
        SeckillQuota.objects.filter(activity_id=activity_id, units_held__gt=0).values_list("user_id", "units_held")
    )


def activity_warm(*, activity_id):
    """Publish if needed, then load the sale into Redis from the database (docs/architecture.md).

    Idempotent and safe during a sale: the Lua script only writes the counters when
    they are missing, so a second warm-up never puts sold units back on sale. A
    warm-up after Redis lost its data counts from the database, which is the truth:
    units in orders written after it read are refused by the database's conditional
    decrement, never sold twice. Returns {"published": bool, "loaded": bool}.
    """
    warm_lock = lock_for("warmup", keys.warm_lock_name(activity_id), metric_label="seckill_warm")  # settings.LOCKS
    try:
        with held(warm_lock, timeout=5.0, lost_message="warm-up outlived it; warm.lua writes only missing keys"):
            return _warm(activity_id)
    except LockAcquireTimeout as exc:
        raise Unavailable("Another process is preparing this sale; try again in a moment.") from exc


def _warm(activity_id):
    activity = SeckillActivity.objects.get(pk=activity_id)
    published = False
    if activity.published_at is None and activity.is_enabled and not activity.has_ended():
        published = activity_publish(activity_id=activity_id)
        activity.refresh_from_db()
    loaded = False
    if activity.published_at is not None:
        loaded = stock.warm(activity=activity, remaining=activity.stock_available, holders=_holders(activity_id))
    cache.forget_sale(activity_id)
    return {"published": published, "loaded": loaded}


def activities_due_for_warmup(now=None):
    now = now or timezone.now()
    lead = timedelta(minutes=conf().warmup_lead_minutes)
    return SeckillActivity.objects.filter(is_enabled=True, starts_at__lte=now + lead, ends_at__gt=now)


def warm_due_activities(now=None):
    """Beat job: warm sales starting soon, and re-warm live ones Redis has forgotten."""
    ids = list(activities_due_for_warmup(now).values_list("pk", flat=True))
    cold = [i for i, left in stock.remaining_many(ids).items() if left is None]
    return {i: activity_warm(activity_id=i) for i in cold}


def activity_end_now(*, activity_id):
    """Kill switch: no purchase is accepted from now on, in every process, at once.

    The end time moves to now (or, before the start, the sale is disabled) in the
    database, and the Redis metadata the Lua script checks is rewritten right away.
    """
    now = timezone.now()
    activity = SeckillActivity.objects.get(pk=activity_id)
    if activity.starts_at < now:
        SeckillActivity.objects.filter(pk=activity_id, ends_at__gt=now).update(ends_at=now, version=F("version") + 1)
    else:
        SeckillActivity.objects.filter(pk=activity_id).update(is_enabled=False, version=F("version") + 1)
    activity.refresh_from_db()
    if activity.published_at is not None:
        stock.warm(activity=activity, remaining=activity.stock_available, holders=_holders(activity_id))
    cache.forget_sale(activity_id)
    return activity


def activity_resync(*, activity_id):
    """Rewrite the Redis counters from the database (staff action and `reconcile --fix`).

    remaining = units left in the DB pool minus reservations still on their way to an
    order; each customer's count = units in live orders plus open reservations. The
    database side is read in one statement and the open reservations are counted inside
    the Lua script (resync.lua), so a purchase running meanwhile is neither lost nor
    counted twice. Returns True when the counters were written.
    """
    activity = SeckillActivity.objects.get(pk=activity_id)
    if activity.published_at is None:
        return False
    if stock.remaining(activity_id) is None:
        return activity_warm(activity_id=activity_id)["loaded"]
    pool, settled, holders = _db_snapshot(activity_id)
    written = stock.resync(activity=activity, pool=pool, settled=settled, holders=holders)
    cache.forget_sale(activity_id)
    return written is not None


# One statement, so one InnoDB read view: the pool, the settled reservations and the
# customers' units are all as of the same instant. Kinds: 1 pool, 2 settled, 3 holder.
_SNAPSHOT = """
    SELECT 1, stock_available, NULL FROM seckill_seckillactivity WHERE id = %s
    UNION ALL SELECT 2, 0, CONVERT(reservation_id USING utf8mb4) FROM seckill_seckillorder WHERE activity_id = %s
    UNION ALL SELECT 3, units_held, CONVERT(user_id USING utf8mb4) FROM seckill_seckillquota
        WHERE activity_id = %s AND units_held > 0
"""


def _db_snapshot(activity_id):
    """(pool, settled reservation ids, [(customer, units)]) from one read view of the sale."""
    pool, settled, holders = 0, [], []
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT, [activity_id] * 3)
        for kind, number, text in cursor.fetchall():
            if kind == 1:
                pool = int(number)
            elif kind == 2:
                settled.append(text)
            else:
                holders.append((int(text), int(number)))
    return pool, settled, holders

"""A sale's life outside the purchase itself: publish, warm up, end now, re-sync Redis,
and give the unsold units back to the product once the sale is over.

Publishing sets the sale's units aside from the product once (the sale row is locked
for the check-and-set); warming loads the sale into Redis from the database, which is
the truth, and never puts sold units back on sale (warm.lua writes only missing keys);
a re-sync rewrites the counters from one read view of the database.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.db import atomic_with_retry
from locks import LockAcquireTimeout, held, lock_for
from orders.services import return_stock, take_stock
from seckill import buckets, cache, intents, keys, stock
from seckill.conf import conf
from seckill.errors import Unavailable
from seckill.models import SeckillActivity, SeckillQuota, SeckillStockBucket
from seckill.services.reservations import open_reservations

# Redis refuses a purchase from the sale's end on its own clock; this margin covers a
# web or beat host whose clock runs ahead of Redis's, so no purchase can still be on
# its way when the units go back.
RETURN_AFTER_END = timedelta(seconds=30)


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
    reserve = activity.stock_total
    if activity.bucket_count > 1:  # a first chunk in every bucket's row, the rest in the sale row (the reserve)
        shares, reserve = buckets.initial_split(activity.stock_total, activity.bucket_count)
        SeckillStockBucket.objects.bulk_create(
            SeckillStockBucket(activity_id=activity_id, index=i, stock_available=units)
            for i, units in enumerate(shares)
        )
    SeckillActivity.objects.filter(pk=activity_id).update(stock_available=reserve, published_at=timezone.now())
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
        loaded = _load(activity)
    cache.forget_sale(activity_id)
    return {"published": published, "loaded": loaded}


def _load(activity):
    """Metadata always, counters where missing (warm.lua); every bucket and the reserve of a bucketed sale."""
    if activity.bucket_count > 1:
        return buckets.warm(activity=activity, holders=_holders(activity.pk))
    return stock.warm(activity=activity, remaining=activity.stock_available, holders=_holders(activity.pk))


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
        _load(activity)
    cache.forget_sale(activity_id)
    return activity


def activities_due_for_return(now=None):
    """Published sales over for RETURN_AFTER_END whose unsold units are still set aside."""
    now = now or timezone.now()
    return SeckillActivity.objects.filter(
        published_at__isnull=False, returned_at__isnull=True, ends_at__lte=now - RETURN_AFTER_END
    ).order_by("ends_at")


def activity_return_unsold(*, activity_id, now=None):
    """Give the units of an ended sale that were neither sold nor held back to the product.

    Returns the units returned, or None when there is nothing to do yet (not over,
    purchases still being written, reservations still open) or any more (returned before).

    Why it happens exactly once and never takes a unit someone holds:
    - it waits until no purchase can still become an order: the sale ended (by Redis's
      clock, plus RETURN_AFTER_END), no intent waits for the order writer and no
      reservation is open (a stranded one is given back by its sweep first). After the
      end that set can only shrink, so what is left in the pool is nobody's;
    - Redis's counter goes to 0 first (`SET ... XX`, idempotent), then one transaction
      moves the pool to `stock_returned`, stamps `returned_at` and adds the units to the
      product. The UPDATE is conditional on `returned_at IS NULL`: a second run, a second
      beat, or a crash and a retry match nothing and add nothing. A crash between the two
      steps leaves Redis at 0 and the pool unreturned, which the next run completes;
    - an order cancelled or expiring meanwhile either commits first (its units are in
      the pool this returns) or waits for this row lock and then sees `returned_at`
      (seckill/services/deadlines.py sends its units to the product). The CHECK
      stock_total >= stock_available + stock_returned keeps the books in the database.
    """
    now = now or timezone.now()
    activity = SeckillActivity.objects.get(pk=activity_id)
    if activity.published_at is None or activity.returned_at is not None:
        return None
    if activity.ends_at > now - RETURN_AFTER_END:
        return None
    client = stock.redis()
    if stock.remaining(activity_id) is not None:
        if activity.bucket_count > 1:
            buckets.finish_transfers(activity_id, older_than_ms=0)  # no unit may land in a bucket after this
        if intents.lag(activity_id, client=client).waiting or open_reservations(activity_id)[0]:
            return None  # still settling: the next run tries again
        if activity.bucket_count > 1 and buckets.units_in_flight(activity_id):
            return None  # a target bucket is missing in Redis: reconciliation sees it
        for counter in _counters(activity):
            client.set(counter, 0, xx=True)
    with transaction.atomic():
        row = SeckillActivity.objects.select_for_update().get(pk=activity_id)
        if row.returned_at is not None:
            return None
        bucket_rows = SeckillStockBucket.objects.filter(activity_id=activity_id)
        units = row.stock_available + sum(bucket_rows.values_list("stock_available", flat=True))
        changed = SeckillActivity.objects.filter(pk=activity_id, returned_at__isnull=True).update(
            stock_available=0,
            stock_returned=F("stock_returned") + units,
            returned_at=now,
            version=F("version") + 1,
        )
        if not changed:
            return None
        bucket_rows.update(stock_available=0)
        if units:
            return_stock(product_id=row.product_id, quantity=units)
    cache.forget_sale(activity_id)
    return units


def _counters(activity):
    """The sale's Redis counters: its stock key, or a bucketed sale's reserve and bucket counters."""
    if activity.bucket_count <= 1:
        return [keys.stock(activity.pk)]
    return [keys.reserve(activity.pk)] + [keys.stock(s) for s in keys.spaces(activity.pk, activity.bucket_count)]


def return_unsold_units(now=None):
    """Beat job: every sale that is over and settled gives its unsold units back, once."""
    returned = {}
    for activity_id in activities_due_for_return(now).values_list("pk", flat=True):
        units = activity_return_unsold(activity_id=activity_id, now=now)
        if units is not None:
            returned[activity_id] = units
    return returned


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
    if activity.bucket_count > 1:
        written = _resync_buckets(activity)
    else:
        pool, settled, holders = _db_snapshot(activity_id)
        written = stock.resync(activity=activity, pool=pool, settled=settled, holders=holders)
    cache.forget_sale(activity_id)
    return written is not None


def _resync_buckets(activity):
    """A bucketed sale's re-sync: every bucket's counter to 0 and its holders from the DB
    (resync.lua with an empty pool, its open reservations counted inside the script as for
    one bucket), then the reserve to the DB pool (sale row and bucket rows) minus all those
    open reservations.

    Transfers are finished first. Not one atomic step across slots: a purchase that moves
    units from the reserve between the bucket scripts and the reserve's SET is counted
    twice in Redis, which the database's CHECKed rows still refuse to sell; run it when the
    sale is quiet (it is a repair, `reconcile --fix` or the staff action)."""
    buckets.finish_transfers(activity.pk, older_than_ms=0)
    pool, settled, holders = _db_snapshot(activity.pk)
    by_bucket = {}
    for user_id, units in holders:
        by_bucket.setdefault(keys.home_bucket(user_id, activity.bucket_count), []).append((user_id, units))
    open_units = 0
    for index, space in enumerate(keys.spaces(activity.pk, activity.bucket_count)):
        done = stock.resync(activity=activity, pool=0, settled=settled, holders=by_bucket.get(index, []), space=space)
        if done is None:
            return None
        open_units += done[1]
    remaining = max(pool - open_units, 0)
    stock.redis().set(keys.reserve(activity.pk), remaining, pxat=stock.keep_until_ms(activity))
    stock.announce_units_back(activity.pk)
    return remaining, open_units


# One statement, so one InnoDB read view: the pool, the settled reservations and the
# customers' units are all as of the same instant. Kinds: 1 pool, 2 settled, 3 holder.
_SNAPSHOT = """
    SELECT 1, stock_available, NULL FROM seckill_seckillactivity WHERE id = %s
    UNION ALL SELECT 1, stock_available, NULL FROM seckill_seckillstockbucket WHERE activity_id = %s
    UNION ALL SELECT 2, 0, CONVERT(reservation_id USING utf8mb4) FROM seckill_seckillorder WHERE activity_id = %s
    UNION ALL SELECT 3, units_held, CONVERT(user_id USING utf8mb4) FROM seckill_seckillquota
        WHERE activity_id = %s AND units_held > 0
"""


def _db_snapshot(activity_id):
    """(pool, settled reservation ids, [(customer, units)]) from one read view of the sale."""
    pool, settled, holders = 0, [], []
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT, [activity_id] * 4)
        for kind, number, text in cursor.fetchall():
            if kind == 1:  # the sale row, and a bucketed sale's bucket rows
                pool += int(number)
            elif kind == 2:
                settled.append(text)
            else:
                holders.append((int(text), int(number)))
    return pool, settled, holders

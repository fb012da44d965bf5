"""stock_drift (I5): the units of a sale must add up, in the database and in Redis.

Units left in the DB pool plus units in live orders plus units given back to the
product after the sale ended (`stock_returned`) must equal the units set aside for the
sale; Redis's counter plus the open reservations must equal the DB pool (a sale that
returned its units keeps 0 in Redis, seckill/services/lifecycle.py). A
sale whose keys are not in Redis is never read as "zero left": it is a finding of its
own while the sale is live or recently ended (warm-up lost, Redis wiped), and a note
once its keys have expired on purpose (stock.KEEP_AFTER_END after the end).

A bucketed sale (seckill/buckets.py) balances the same books with its parts summed: in
the database its sale row (the reserve) and its bucket rows; in Redis its reserve, its
buckets, the units of transfers taken from one side and not yet added to the other,
and every bucket's open reservations. A transfer left between its two steps for longer
than buckets.STALE_TRANSFER_MS is a finding of its own (`unfinished_transfer`), which
`reconcile --fix` finishes, exactly once.
"""

import time

from reconciliation.checks.scope import Sale, fetch_rows, sale_live_units
from reconciliation.findings import MAX_ORDER_NUMBERS, STOCK_DRIFT, Finding
from seckill import buckets, stock
from seckill.models import SeckillActivity, SeckillOrder
from seckill.services import open_reservations

MAX_LISTED_RESERVATIONS = 50
# A drift seen while a sale is selling may be a purchase caught between its Redis
# reservation and its DB commit; a real drift is still there when read again.
DRIFT_CONFIRMATIONS = 2
DRIFT_CONFIRM_PAUSE_S = 0.1


def _conservation(sale, *, live=None, remaining=None, open_entries=None):
    """remaining (Redis) + live units (DB) + open reservations (Redis, no order) + units
    returned to the product vs stock_total."""
    live = sale_live_units(sale.id) if live is None else live
    remaining = stock.remaining(sale.id) if remaining is None else remaining
    if remaining is None:
        return None
    if open_entries is None:
        open_entries = open_reservations(sale.id)[0]
    open_units = sum(e.quantity for e in open_entries)
    moving = buckets.units_in_flight(sale.id, sale.bucket_count) if sale.bucket_count > 1 else 0
    return {
        "stock_total": sale.stock_total,
        "live_units": live,
        "redis_remaining": remaining,
        "open_reservation_units": open_units,
        **({"returned_units": sale.stock_returned} if sale.stock_returned else {}),
        **({"units_in_transfer": moving} if sale.bucket_count > 1 else {}),
        "difference": remaining + live + open_units + moving + sale.stock_returned - sale.stock_total,
    }


def conservation(sale_id):
    """I5 for one sale, read fresh: the numbers and their difference (0 when it holds),
    or None when the sale is not in Redis."""
    row = SeckillActivity.objects.get(pk=sale_id)
    sale = Sale(
        row.pk,
        row.product_id,
        row.stock_total,
        row.stock_available,
        row.per_user_limit,
        True,
        row.ends_at,
        row.stock_returned,
        row.bucket_count,
    )
    return _conservation(sale)


def unfinished_transfers(scope):
    """Transfers of bucketed sales stopped between their two steps (older than the sweep's margin)."""
    findings = []
    for sale in scope.sales().values():
        if not sale.published or sale.bucket_count <= 1:
            continue
        cutoff = stock.server_time_ms() - buckets.STALE_TRANSFER_MS
        for t in buckets.in_flight(sale.id, sale.bucket_count):
            if t["at_ms"] > cutoff:
                continue
            findings.append(
                Finding(
                    kind=STOCK_DRIFT,
                    key=("unfinished_transfer", sale.id, t["transfer_id"]),
                    summary=(
                        f"transfer {t['transfer_id']} of {t['units']} unit(s) from {t['source']} to {t['target']} "
                        + ("received, outgoing record not cleared" if t["received"] else "taken, never added")
                    ),
                    activity_id=sale.id,
                    detail={"reason": "unfinished_transfer", **t},
                )
            )
    return findings


def _confirmed_drift(sale, first):
    """The drift read again; None if a re-read found the books balanced (a purchase or an
    expiry was between its Redis and its DB step when the first read was made)."""
    reading = first
    for _ in range(DRIFT_CONFIRMATIONS):
        time.sleep(DRIFT_CONFIRM_PAUSE_S)
        reading = _conservation(sale)
        if reading is None or reading["difference"] == 0:
            return None
    return reading


def stock_drift(scope):
    """Sales whose books do not balance (I5), in these ways:

    - db_pool: the DB pool (stock_available) is not stock_total minus the live and the
      returned units;
    - redis: Redis remaining + live units + open reservations + returned != stock_total;
    - redis_missing: a published sale that is live or recently ended has no Redis state;
    - unfinished_transfer: a bucketed sale's transfer stopped between its two steps;
    and, on a full run, missing_sale: order links, quotas or refusals pointing at a sale
    that does not exist (those foreign keys have no DB constraint on purpose).
    """
    findings = _missing_sales() if not scope.limited else []
    per_sale = scope.live_units().per_sale
    published = [s for s in scope.sales().values() if s.published]
    for sale in published:
        live = per_sale.get(sale.id, 0)
        expected = sale.stock_total - sale.stock_returned - live
        if sale.stock_available != expected:
            findings.append(
                Finding(
                    kind=STOCK_DRIFT,
                    key=("db_pool", sale.id, sale.stock_available - expected),
                    summary=(
                        f"DB pool {sale.stock_available}, expected {expected} "
                        f"({sale.stock_total} - {live} live - {sale.stock_returned} returned)"
                    ),
                    activity_id=sale.id,
                    detail={
                        "reason": "db_pool",
                        "stock_total": sale.stock_total,
                        "live_units": live,
                        **({"returned_units": sale.stock_returned} if sale.stock_returned else {}),
                        "stock_available": sale.stock_available,
                        "expected_available": expected,
                        "difference": sale.stock_available - expected,
                    },
                )
            )
    expired = 0
    remaining = scope.redis_remaining()
    for sale in published:
        if remaining.get(sale.id) is None:
            if sale.ends_at + stock.KEEP_AFTER_END <= scope.now:
                expired += 1
                continue
            findings.append(
                Finding(
                    kind=STOCK_DRIFT,
                    key=("redis_missing", sale.id),
                    summary="published sale has no state in Redis (never warmed, or Redis lost it)",
                    activity_id=sale.id,
                    detail={"reason": "redis_missing"},
                )
            )
            continue
        reading = _conservation(
            sale,
            live=per_sale.get(sale.id, 0),
            remaining=remaining[sale.id],
            open_entries=scope.open_reservations(sale.id),
        )
        if reading["difference"] != 0:
            reading = _confirmed_drift(sale, reading)
        if reading is None or reading["difference"] == 0:
            continue
        findings.append(
            Finding(
                kind=STOCK_DRIFT,
                key=("redis", sale.id, reading["difference"]),  # the same drift while the sale sells on
                summary=(
                    f"Redis {reading['redis_remaining']} + live {reading['live_units']} + open "
                    f"{reading['open_reservation_units']} != {sale.stock_total} ({reading['difference']:+d})"
                ),
                activity_id=sale.id,
                detail={"reason": "redis", **reading},
            )
        )
    findings += unfinished_transfers(scope)
    if expired:
        scope.notes.append(
            f"{expired} published sale(s) ended more than {stock.KEEP_AFTER_END.days} days ago have no Redis state "
            "(expired on purpose): checked in the database only."
        )
    return findings


# Distinct sale ids of each child table come from a loose scan of an index that starts
# with activity_id (one step per sale, not per row); only those are joined to the sales.
_MISSING_SALES_SQL = """
SELECT ids.activity_id, ids.source
  FROM (SELECT DISTINCT activity_id, 'orders' AS source FROM seckill_seckillorder
        UNION ALL SELECT DISTINCT activity_id, 'quotas' FROM seckill_seckillquota
        UNION ALL SELECT DISTINCT activity_id, 'refusals' FROM seckill_seckillrefusal) ids
  LEFT JOIN seckill_seckillactivity a ON a.id = ids.activity_id
 WHERE a.id IS NULL
"""


def _missing_sales():
    missing = {}
    for sale_id, source in fetch_rows(_MISSING_SALES_SQL, []):
        missing.setdefault(sale_id, []).append(source)
    findings = []
    for sale_id, sources in sorted(missing.items()):
        links = SeckillOrder.objects.filter(activity_id=sale_id)
        numbers = list(links.order_by("pk").values_list("order__number", flat=True)[:MAX_ORDER_NUMBERS])
        count = links.count()
        findings.append(
            Finding(
                kind=STOCK_DRIFT,
                key=("missing_sale", sale_id, *sorted(sources), count),
                summary=f"{', '.join(sorted(sources))} point at sale {sale_id}, which does not exist",
                activity_id=sale_id,
                order_numbers=tuple(numbers),
                detail={"reason": "missing_sale", "rows_in": sorted(sources), "order_links": count},
            )
        )
    return findings

"""The flash-sale checks of reconciliation, and the list of every check the runner runs.

Each check takes a `Scope` and returns `Finding`s. The database side is set-based: one
GROUP BY ... HAVING pass over the order links hands back per-sale totals and only the
customers above their limit, so the rows that reach Python are the sales and the
problems, never the orders. The Redis side reads a sale's counter with GET/MGET and its
reservations with HSCAN, so a big reservation hash never blocks Redis.

A sale whose keys are not in Redis is never read as "zero left": it is a finding of
its own while the sale is live or recently ended (warm-up lost, Redis wiped), and a
note once its keys have expired on purpose (stock.KEEP_AFTER_END after the end).
"""

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from orders import reconciliation as orders_checks
from orders.models import Order
from seckill import services, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillTicket
from seckill.reconciliation.models import DiscrepancyKind
from shop import reconciliation as shop_checks
from shop.reconciliation import Finding

_LIVE = tuple(Order.LIVE_STATUSES)
# Plain strings, so findings print and serialise as the contract's kind names.
DUPLICATE_ORDER = DiscrepancyKind.DUPLICATE_ORDER.value
OVERSOLD = DiscrepancyKind.OVERSOLD.value
OVER_LIMIT = DiscrepancyKind.OVER_LIMIT.value
STOCK_DRIFT = DiscrepancyKind.STOCK_DRIFT.value
STRANDED_RESERVATION = DiscrepancyKind.STRANDED_RESERVATION.value
MAX_ORDER_NUMBERS = 100  # order numbers kept on one finding; its detail has the totals
MAX_LISTED_RESERVATIONS = 50
# A drift seen while a sale is selling may be a purchase caught between its Redis
# reservation and its DB commit; a real drift is still there when read again.
DRIFT_CONFIRMATIONS = 2
DRIFT_CONFIRM_PAUSE_S = 0.1


@dataclass(frozen=True)
class Sale:
    id: int
    product_id: int
    stock_total: int
    stock_available: int
    per_user_limit: int
    published: bool
    ends_at: datetime


@dataclass(frozen=True)
class LiveUnits:
    per_sale: dict  # sale id -> units in live orders
    over_limit: list  # (sale id, user id, units, limit)


@dataclass
class Scope:
    """What a run looks at, plus reads several checks share, made once per run.

    `activity_ids` limits the run to those sales; `since` to sales still running on or
    after that date (and checkout orders created since then). Neither: everything.
    """

    activity_ids: list | None = None
    since: datetime | None = None
    now: datetime = field(default_factory=timezone.now)
    grace_seconds: int | None = None
    notes: list = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.activity_ids is not None:
            self.activity_ids = sorted(set(self.activity_ids))
        if self.grace_seconds is None:
            self.grace_seconds = settings.SECKILL_RESERVATION_GRACE_SECONDS

    @property
    def limited(self):
        return self.activity_ids is not None or self.since is not None

    def _memo(self, name, compute):
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    def sales(self):
        """{id: Sale} of the sales in scope, from one query on the (small) sale table."""

        def load():
            rows = SeckillActivity.objects.order_by("pk")
            if self.activity_ids is not None:
                rows = rows.filter(pk__in=self.activity_ids)
            if self.since is not None:
                rows = rows.filter(ends_at__gte=self.since)
            fields = ("pk", "product_id", "stock_total", "stock_available", "per_user_limit", "published_at", "ends_at")
            return {
                pk: Sale(pk, product_id, total, available, limit, published is not None, ends_at)
                for pk, product_id, total, available, limit, published, ends_at in rows.values_list(*fields)
            }

        return self._memo("sales", load)

    def sale_ids_sql(self, column):
        """(" AND column IN (...)", params) restricting a query to the sales in scope."""
        if not self.limited:
            return "", []
        ids = list(self.sales())
        if not ids:
            return " AND FALSE", []
        return f" AND {column} IN ({', '.join(['%s'] * len(ids))})", ids

    def redis_remaining(self):
        """{sale id: units left in Redis or None} for the published sales in scope, one MGET."""
        return self._memo(
            "remaining", lambda: stock.remaining_many([s.id for s in self.sales().values() if s.published])
        )

    def open_reservations(self, sale_id):
        """Reservations of a sale with no order yet (HSCAN), read once per run."""
        return self._memo(f"open:{sale_id}", lambda: services.open_reservations(sale_id)[0])

    def live_units(self):
        return self._memo("live", lambda: _live_units(self))

    def duplicate_idempotency_keys(self):
        """Shared by the checkout and the flash-sale duplicate checks: one index pass."""
        return self._memo("idempotency", orders_checks.duplicate_idempotency_keys)


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _placeholders(values):
    return ", ".join(["%s"] * len(values))


# One pass over the live order links: WITH ROLLUP adds a total row per sale (user_id
# NULL), and HAVING keeps those totals plus the customers above the limit. The grand
# total row (both NULL) is dropped in Python. Not `user_id IS NULL`: the column is NOT
# NULL, and MariaDB folds that test to false before the rollup rows exist, dropping
# every total (a single-customer sale shows it); COALESCE is evaluated per row.
#
# On a full run the links are read in primary-key order and each order is looked up by
# primary key, then sorted by (sale, customer) once. Links and orders are both written
# in purchase order, so both reads are sequential; the optimiser's own choice (walking
# the (activity, user) index and fetching each link and order at random) took twice as
# long on a million orders (docs/benchmarks.md). A run limited to some sales uses the
# index on activity_id instead, as it should.
_LIVE_UNITS_SQL = f"""
SELECT {{straight}} so.activity_id, so.user_id, SUM(so.quantity) AS units, MAX(a.per_user_limit) AS unit_limit
  FROM seckill_seckillorder so {{scan}}
  JOIN orders_order o ON o.id = so.order_id
  JOIN seckill_seckillactivity a ON a.id = so.activity_id
 WHERE o.status IN ({_placeholders(_LIVE)}){{sales}}
 GROUP BY so.activity_id, so.user_id WITH ROLLUP
HAVING COALESCE(so.user_id, 0) = 0 OR units > unit_limit
"""  # noqa: S608 - only %s placeholders and fixed hints are formatted in; values go as parameters


def _live_units(scope):
    sales_sql, params = scope.sale_ids_sql("so.activity_id")
    per_sale, over_limit = {}, []
    hints = (
        {"straight": "", "scan": ""}
        if scope.limited
        else {"straight": "STRAIGHT_JOIN", "scan": "FORCE INDEX (PRIMARY)"}
    )
    sql = _LIVE_UNITS_SQL.format(sales=sales_sql, **hints)
    for sale_id, user_id, units, limit in _rows(sql, [*_LIVE, *params]):
        if sale_id is None:
            continue
        if user_id is None:
            per_sale[sale_id] = int(units)
        else:
            over_limit.append((sale_id, user_id, int(units), int(limit)))
    return LiveUnits(per_sale, over_limit)


_SALE_LIVE_UNITS_SQL = f"""
SELECT COALESCE(SUM(so.quantity), 0)
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE so.activity_id = %s AND o.status IN ({_placeholders(_LIVE)})
"""  # noqa: S608 - only %s placeholders are formatted in

_NEWEST_LIVE_ORDERS_SQL = f"""
SELECT o.number, so.quantity
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE so.activity_id = %s AND o.status IN ({_placeholders(_LIVE)})
 ORDER BY so.id DESC LIMIT %s
"""  # noqa: S608 - only %s placeholders are formatted in

_CUSTOMER_LIVE_ORDERS_SQL = f"""
SELECT so.activity_id, so.user_id, o.number
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE (so.activity_id, so.user_id) IN ({{pairs}}) AND o.status IN ({_placeholders(_LIVE)})
 ORDER BY o.id
"""  # noqa: S608 - only %s placeholders are formatted in


def _sale_live_units(sale_id):
    """Units in live orders of one sale: a range of the (activity, user) index, not a full pass."""
    return int(_rows(_SALE_LIVE_UNITS_SQL, [sale_id, *_LIVE])[0][0])


def _newest_live_orders(sale_id, units_wanted):
    """Numbers of the newest live orders of a sale holding at least `units_wanted` units."""
    numbers, units = [], 0
    for number, quantity in _rows(_NEWEST_LIVE_ORDERS_SQL, [sale_id, *_LIVE, min(units_wanted, MAX_ORDER_NUMBERS)]):
        numbers.append(number)
        units += quantity
        if units >= units_wanted:
            break
    return numbers


# --- oversold and over_limit (I1, I3) ------------------------------------------------------


def oversold(scope):
    """Sales whose live orders hold more units than the sale had (I1).

    The conditional decrement of the DB pool and its CHECK make this impossible through
    the services; this catches writes that went around them. The newest live orders are
    listed: they are the ones the stock could not have covered.
    """
    per_sale = scope.live_units().per_sale
    findings = []
    for sale in scope.sales().values():
        live = per_sale.get(sale.id, 0)
        if live <= sale.stock_total:
            continue
        excess = live - sale.stock_total
        findings.append(
            Finding(
                kind=OVERSOLD,
                key=(sale.id, live, sale.stock_total),
                summary=f"{live} units in live orders, the sale had {sale.stock_total} (+{excess})",
                activity_id=sale.id,
                order_numbers=tuple(_newest_live_orders(sale.id, excess)),
                detail={"live_units": live, "stock_total": sale.stock_total, "excess": excess},
            )
        )
    return findings


def over_limit(scope):
    """Customers holding more units of a sale than its per-customer limit (I3)."""
    flagged = scope.live_units().over_limit
    if not flagged:
        return []
    sql = _CUSTOMER_LIVE_ORDERS_SQL.format(pairs=", ".join(["(%s, %s)"] * len(flagged)))
    params = [value for sale_id, user_id, _, _ in flagged for value in (sale_id, user_id)]
    numbers = {}
    for sale_id, user_id, number in _rows(sql, [*params, *_LIVE]):
        numbers.setdefault((sale_id, user_id), []).append(number)
    return [
        Finding(
            kind=OVER_LIMIT,
            key=(sale_id, user_id, units),
            summary=f"customer {user_id} holds {units} units, the limit is {limit}",
            activity_id=sale_id,
            order_numbers=tuple(numbers.get((sale_id, user_id), ())[:MAX_ORDER_NUMBERS]),
            detail={"user_id": user_id, "units": units, "limit": limit},
        )
        for sale_id, user_id, units, limit in flagged
    ]


# --- duplicate_order ---------------------------------------------------------------------

# First the duplicate reservation ids, from the unique reservation_id index alone (one
# pass, no row lookups); then their links and orders, in a second query, for those few.
_DUPLICATE_RESERVATIONS_SQL = """
SELECT reservation_id FROM seckill_seckillorder GROUP BY reservation_id HAVING COUNT(*) > 1
"""

_LINKS_OF_RESERVATIONS_SQL = """
SELECT so.activity_id, so.reservation_id, so.user_id, o.number, o.status
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE so.reservation_id IN ({ids})
 ORDER BY so.reservation_id, o.id
"""


def duplicate_orders(scope):
    """One purchase that became more than one order: two orders for one reservation, or
    two live flash-sale orders of one customer under one idempotency key (I4's other side).

    The unique reservation_id and (user, idempotency_key) indexes forbid both; this is
    the backstop for the day one of them is missing.
    """
    duplicated = [rid for (rid,) in _rows(_DUPLICATE_RESERVATIONS_SQL, [])]
    links = {}
    if duplicated:
        sql = _LINKS_OF_RESERVATIONS_SQL.format(ids=_placeholders(duplicated))
        for sale_id, reservation_id, user_id, number, status in _rows(sql, duplicated):
            links.setdefault(reservation_id, []).append((sale_id, user_id, number, status))
    in_scope = scope.sales() if scope.limited else None
    findings = []
    for reservation_id, rows in links.items():
        sale_id, user_id = rows[0][0], rows[0][1]
        if in_scope is not None and sale_id not in in_scope:
            continue
        numbers = [number for _, _, number, _ in rows]
        findings.append(
            Finding(
                kind=DUPLICATE_ORDER,
                key=("reservation", reservation_id, *numbers),
                summary=f"reservation {reservation_id} became {len(numbers)} orders",
                activity_id=sale_id,
                order_numbers=tuple(numbers),
                detail={
                    "reason": "same_reservation",
                    "severity": "error",
                    "reservation_id": reservation_id,
                    "user_id": user_id,
                    "statuses": [status for _, _, _, status in rows],
                },
            )
        )
    findings += _duplicate_sale_keys(scope)
    return findings


def _duplicate_sale_keys(scope):
    groups = [row for row in scope.duplicate_idempotency_keys() if Order.Source.SECKILL in row[4]]
    if not groups:
        return []
    numbers = [number for row in groups for number in row[2]]
    sale_of = dict(SeckillOrder.objects.filter(order__number__in=numbers).values_list("order__number", "activity_id"))
    in_scope = scope.sales() if scope.limited else None
    findings = []
    for user_id, key, group_numbers, statuses, _sources in groups:
        sale_id = next((sale_of[n] for n in group_numbers if n in sale_of), None)
        if in_scope is not None and sale_id not in in_scope:
            continue
        findings.append(orders_checks.shared_key_finding(user_id, key, group_numbers, statuses, activity_id=sale_id))
    return findings


# --- stock_drift (I5) --------------------------------------------------------------------


def _conservation(sale, *, live=None, remaining=None, open_entries=None):
    """remaining (Redis) + live units (DB) + open reservations (Redis, no order) vs stock_total."""
    live = _sale_live_units(sale.id) if live is None else live
    remaining = stock.remaining(sale.id) if remaining is None else remaining
    if remaining is None:
        return None
    if open_entries is None:
        open_entries = services.open_reservations(sale.id)[0]
    open_units = sum(e.quantity for e in open_entries)
    return {
        "stock_total": sale.stock_total,
        "live_units": live,
        "redis_remaining": remaining,
        "open_reservation_units": open_units,
        "difference": remaining + live + open_units - sale.stock_total,
    }


def conservation(sale_id):
    """I5 for one sale, read fresh: the numbers and their difference (0 when it holds),
    or None when the sale is not in Redis."""
    row = SeckillActivity.objects.get(pk=sale_id)
    sale = Sale(row.pk, row.product_id, row.stock_total, row.stock_available, row.per_user_limit, True, row.ends_at)
    return _conservation(sale)


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
    """Sales whose books do not balance (I5), in three ways:

    - db_pool: the DB pool (stock_available) is not stock_total minus the live units;
    - redis: Redis remaining + live units + open reservations != stock_total;
    - redis_missing: a published sale that is live or recently ended has no Redis state;
    and, on a full run, missing_sale: order links, quotas or tickets pointing at a sale
    that does not exist (those foreign keys have no DB constraint on purpose).
    """
    findings = _missing_sales() if not scope.limited else []
    per_sale = scope.live_units().per_sale
    published = [s for s in scope.sales().values() if s.published]
    for sale in published:
        live = per_sale.get(sale.id, 0)
        expected = sale.stock_total - live
        if sale.stock_available != expected:
            findings.append(
                Finding(
                    kind=STOCK_DRIFT,
                    key=("db_pool", sale.id, sale.stock_available - expected),
                    summary=f"DB pool {sale.stock_available}, expected {expected} ({sale.stock_total} - {live} live)",
                    activity_id=sale.id,
                    detail={
                        "reason": "db_pool",
                        "stock_total": sale.stock_total,
                        "live_units": live,
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
        UNION ALL SELECT DISTINCT activity_id, 'tickets' FROM seckill_seckillticket) ids
  LEFT JOIN seckill_seckillactivity a ON a.id = ids.activity_id
 WHERE a.id IS NULL
"""


def _missing_sales():
    missing = {}
    for sale_id, source in _rows(_MISSING_SALES_SQL, []):
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


# --- stranded_reservation (I2) -----------------------------------------------------------


def stranded_reservations(scope):
    """Reservations in Redis with no order after the grace period: units that would never
    sell. Pending async tickets are left out (their order is still coming), as are
    reservations younger than the grace period (a purchase in flight)."""
    remaining = scope.redis_remaining()
    findings = []
    now_ms = None
    for sale in scope.sales().values():
        if remaining.get(sale.id) is None:
            continue
        entries = scope.open_reservations(sale.id)
        if not entries:
            continue
        now_ms = now_ms or stock.server_time_ms()
        cutoff_ms = now_ms - scope.grace_seconds * 1000
        old = [e for e in entries if e.reserved_ms <= cutoff_ms]
        if not old:
            continue
        waiting = set(
            SeckillTicket.objects.filter(
                pk__in=[e.reservation_id for e in old], status=SeckillTicket.Status.PENDING
            ).values_list("pk", flat=True)
        )
        stranded = sorted((e for e in old if e.reservation_id not in waiting), key=lambda e: e.reserved_ms)
        if not stranded:
            continue
        units = sum(e.quantity for e in stranded)
        findings.append(
            Finding(
                kind=STRANDED_RESERVATION,
                key=(sale.id, *sorted(e.reservation_id for e in stranded)),
                summary=(
                    f"{len(stranded)} reservation(s), {units} unit(s) with no order, "
                    f"oldest {(now_ms - stranded[0].reserved_ms) // 1000} s"
                ),
                activity_id=sale.id,
                detail={
                    "units": units,
                    "count": len(stranded),
                    "grace_seconds": scope.grace_seconds,
                    "reservations": [
                        {
                            "reservation_id": e.reservation_id,
                            "user_id": e.user_id,
                            "quantity": e.quantity,
                            "age_s": (now_ms - e.reserved_ms) // 1000,
                        }
                        for e in stranded[:MAX_LISTED_RESERVATIONS]
                    ],
                },
            )
        )
    return findings


# --- the catalogue's and the orders' checks, scoped ----------------------------------------


def negative_stock(scope):
    product_ids = None
    if scope.activity_ids is not None:
        product_ids = sorted({s.product_id for s in scope.sales().values()})
    return shop_checks.negative_stock(product_ids=product_ids)


def checkout_duplicates(scope):
    """Checkout orders have no sale, so a run limited to sales leaves them out."""
    if scope.activity_ids is not None:
        return []
    return orders_checks.duplicate_checkout_keys(scope.duplicate_idempotency_keys()) + orders_checks.repeated_checkouts(
        since=scope.since
    )


# The runner's list: (label, check). Oversold and over_limit share one pass over the
# orders (Scope.live_units), which stock_drift then reuses.
CHECKS = (
    ("negative_stock", negative_stock),
    ("duplicate_order (checkout)", checkout_duplicates),
    ("duplicate_order (sale)", duplicate_orders),
    ("oversold", oversold),
    ("over_limit", over_limit),
    ("stock_drift", stock_drift),
    ("stranded_reservation", stranded_reservations),
)

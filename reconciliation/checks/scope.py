"""What one reconciliation run looks at (`Scope`), and the reads its checks share.

The database side is set-based: one GROUP BY ... HAVING pass over the order links
hands back per-sale totals and only the customers above their limit, so the rows that
reach Python are the sales and the problems, never the orders. The reads are memoised
on the Scope, so checks that need the same pass (oversold, over_limit, stock_drift)
make it once per run.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from orders.models import Order
from reconciliation.checks import orders as orders_checks
from seckill import stock
from seckill.conf import conf
from seckill.models import SeckillActivity, SeckillStockBucket
from seckill.services import open_reservations

LIVE = tuple(Order.LIVE_STATUSES)


@dataclass(frozen=True)
class Sale:
    id: int
    product_id: int
    stock_total: int
    stock_available: int
    per_user_limit: int
    published: bool
    ends_at: datetime
    stock_returned: int = 0  # given back to the product after the sale ended
    bucket_count: int = 1  # a bucketed sale's stock_available is its sale row plus its bucket rows


def _with_bucket_rows(sales):
    """A bucketed sale's DB pool is its sale row (the reserve) plus its bucket rows: one query for them all."""
    bucketed = [s.id for s in sales.values() if s.bucket_count > 1]
    if not bucketed:
        return sales
    sums = dict(
        SeckillStockBucket.objects.filter(activity_id__in=bucketed)
        .values("activity_id")
        .annotate(units=Sum("stock_available"))
        .values_list("activity_id", "units")
    )
    return {
        pk: replace(s, stock_available=s.stock_available + (sums.get(pk) or 0)) if pk in sums else s
        for pk, s in sales.items()
    }


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
            self.grace_seconds = conf().reservation_grace_seconds

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
            fields = (
                "pk",
                "product_id",
                "stock_total",
                "stock_available",
                "per_user_limit",
                "published_at",
                "ends_at",
                "stock_returned",
                "bucket_count",
            )
            found = {
                pk: Sale(pk, product_id, total, available, limit, published is not None, ends_at, returned, count)
                for pk, product_id, total, available, limit, published, ends_at, returned, count in rows.values_list(
                    *fields
                )
            }
            return _with_bucket_rows(found)

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
        return self._memo(f"open:{sale_id}", lambda: open_reservations(sale_id)[0])

    def live_units(self):
        return self._memo("live", lambda: _live_units(self))

    def duplicate_idempotency_keys(self):
        """Shared by the checkout and the flash-sale duplicate checks: one index pass."""
        return self._memo("idempotency", orders_checks.duplicate_idempotency_keys)


def fetch_rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def placeholders(values):
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
 WHERE o.status IN ({placeholders(LIVE)}){{sales}}
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
    for sale_id, user_id, units, limit in fetch_rows(sql, [*LIVE, *params]):
        if sale_id is None:
            continue
        if user_id is None:
            per_sale[sale_id] = int(units)
        else:
            over_limit.append((sale_id, user_id, int(units), int(limit)))
    return LiveUnits(per_sale, over_limit)


SALE_LIVE_UNITS_SQL = f"""
SELECT COALESCE(SUM(so.quantity), 0)
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE so.activity_id = %s AND o.status IN ({placeholders(LIVE)})
"""  # noqa: S608 - only %s placeholders are formatted in


def sale_live_units(sale_id):
    """Units in live orders of one sale: a range of the (activity, user) index, not a full pass."""
    return int(fetch_rows(SALE_LIVE_UNITS_SQL, [sale_id, *LIVE])[0][0])

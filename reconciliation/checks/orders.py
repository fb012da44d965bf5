"""Reconciliation checks on orders: duplicates the database cannot, or can no longer, refuse.

Each check is one set-based query (GROUP BY ... HAVING, window functions); the number
of rows it hands back to Python is the number of problems, never the number of orders.
Flash-sale orders are checked in reconciliation/checks/, which owns the link
between an order and its sale.
"""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from orders.models import Order
from reconciliation.findings import DUPLICATE_ORDER, Finding

# Two checkouts by one customer with the same items this close together look like a
# double submit (a second tab, a retry without an idempotency key), not two purchases.
REPEATED_CHECKOUT_WINDOW_SECONDS = 120
REPEATED_CHECKOUT_LOOKBACK = timedelta(days=7)

_LIVE = tuple(Order.LIVE_STATUSES)


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _in(values):
    return ", ".join(["%s"] * len(values))


# Only the unique (user_id, idempotency_key) index is read: one pass over it, no row
# lookups. The orders themselves are read for the duplicate groups alone, in a second
# query (one query with a derived table lets MariaDB's split-materialisation visit
# every order instead).
_DUPLICATE_KEY_GROUPS_SQL = """
SELECT user_id, idempotency_key
  FROM orders_order
 WHERE idempotency_key IS NOT NULL
 GROUP BY user_id, idempotency_key
HAVING COUNT(*) > 1
"""

_ORDERS_UNDER_KEYS_SQL = """
SELECT user_id, idempotency_key, number, status, source
  FROM orders_order
 WHERE (user_id, idempotency_key) IN ({pairs}) AND status IN ({live})
 ORDER BY user_id, idempotency_key, id
"""


def duplicate_idempotency_keys():
    """More than one live order of one customer under one idempotency key.

    The unique (user, idempotency_key) index makes this impossible while it exists; the
    check is there for the day it does not (a migration that dropped it, a restore into
    a table without it). Returns (user_id, key, order numbers, statuses, sources) per
    group, so that the flash-sale check can attribute sale orders to their sale.
    """
    groups = _rows(_DUPLICATE_KEY_GROUPS_SQL, [])
    if not groups:
        return []
    sql = _ORDERS_UNDER_KEYS_SQL.format(pairs=", ".join(["(%s, %s)"] * len(groups)), live=_in(_LIVE))
    orders = {}
    for user_id, key, number, status, source in _rows(sql, [v for pair in groups for v in pair] + list(_LIVE)):
        orders.setdefault((user_id, key), []).append((number, status, source))
    return [
        (user_id, key, [n for n, _, _ in rows], [s for _, s, _ in rows], [src for _, _, src in rows])
        for (user_id, key), rows in orders.items()
        if len(rows) > 1
    ]


def duplicate_checkout_keys(groups=None):
    """duplicate_order findings for checkout orders sharing an idempotency key; `groups`
    is duplicate_idempotency_keys() when the caller has it already."""
    findings = []
    for user_id, key, numbers, statuses, sources in duplicate_idempotency_keys() if groups is None else groups:
        if Order.Source.SECKILL in sources:
            continue  # reported with its sale by the flash-sale check
        findings.append(shared_key_finding(user_id, key, numbers, statuses))
    return findings


def shared_key_finding(user_id, key, numbers, statuses, activity_id=None):
    """The duplicate_order finding for live orders of one customer under one idempotency key."""
    return Finding(
        kind=DUPLICATE_ORDER,
        key=("idempotency_key", user_id, key, *numbers),
        summary=f"{len(numbers)} live orders of customer {user_id} share idempotency key {key}",
        activity_id=activity_id,
        order_numbers=tuple(numbers),
        detail={
            "reason": "same_idempotency_key",
            "severity": "error",
            "user_id": user_id,
            "idempotency_key": key,
            "statuses": statuses,
        },
    )


# One row per live checkout order with its items as a canonical string, then, per
# customer and item list, a chain number that grows whenever the gap to the previous
# identical order exceeds the window; chains of two or more orders are repeats.
_REPEATED_CHECKOUTS_SQL = """
WITH signed AS (
    SELECT o.id, o.number, o.user_id, o.created_at,
           GROUP_CONCAT(i.product_id, 'x', i.quantity ORDER BY i.product_id SEPARATOR ',') AS items
      FROM orders_order o
      JOIN orders_orderitem i ON i.order_id = o.id
     WHERE o.status IN ({live}) AND o.expires_at >= %s AND o.created_at >= %s AND o.source = %s
     GROUP BY o.id, o.number, o.user_id, o.created_at
), marked AS (
    SELECT id, number, user_id, created_at, items,
           CASE WHEN TIMESTAMPDIFF(MICROSECOND, LAG(created_at) OVER w, created_at) <= %s THEN 0 ELSE 1 END
               AS starts_chain
      FROM signed
    WINDOW w AS (PARTITION BY user_id, items ORDER BY created_at, id)
), chained AS (
    SELECT number, user_id, created_at, items, id,
           SUM(starts_chain) OVER (PARTITION BY user_id, items ORDER BY created_at, id
                                   ROWS UNBOUNDED PRECEDING) AS chain
      FROM marked
)
SELECT user_id, items, GROUP_CONCAT(number ORDER BY created_at, id SEPARATOR ','),
       TIMESTAMPDIFF(SECOND, MIN(created_at), MAX(created_at))
  FROM chained
 GROUP BY user_id, items, chain
HAVING COUNT(*) > 1
 ORDER BY user_id, MIN(created_at)
"""


def repeated_checkouts(*, since=None, window_seconds=REPEATED_CHECKOUT_WINDOW_SECONDS):
    """Live checkout orders of one customer with identical items within `window_seconds`
    of each other: flagged for staff to review, not an error (a customer may really
    want two), since nothing in the database can tell a double submit from that.

    Orders created since `since`, by default the last REPEATED_CHECKOUT_LOOKBACK: a
    repeat is news for a few days, and older ones were flagged by earlier runs. The
    extra `expires_at >= since` is implied (an order's deadline comes after its
    creation) and lets the (status, expires_at) index find the recent live orders
    without reading the whole order table.
    """
    since = since or timezone.now() - REPEATED_CHECKOUT_LOOKBACK
    sql = _REPEATED_CHECKOUTS_SQL.format(live=_in(_LIVE))
    params = [*_LIVE, since, since, Order.Source.CHECKOUT, int(window_seconds * 1_000_000)]
    findings = []
    for user_id, items, numbers, span_s in _rows(sql, params):
        numbers = numbers.split(",")
        findings.append(
            Finding(
                kind=DUPLICATE_ORDER,
                key=("repeated_checkout", *numbers),
                summary=f"customer {user_id} checked out the same items {len(numbers)} times in {span_s} s (review)",
                order_numbers=tuple(numbers),
                detail={
                    "reason": "repeated_checkout",
                    "severity": "review",
                    "user_id": user_id,
                    "items": items,
                    "seconds_between_first_and_last": span_s,
                    "window_seconds": window_seconds,
                },
            )
        )
    return findings

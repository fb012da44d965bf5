"""The flash-sale checks of reconciliation: oversold, over the limit, duplicates, stranded units.

Each check takes a `Scope` and returns `Finding`s. The database side is set-based: one
GROUP BY ... HAVING pass over the order links hands back per-sale totals and only the
customers above their limit, so the rows that reach Python are the sales and the
problems, never the orders. The Redis side reads a sale's counter with GET/MGET and its
reservations with HSCAN, so a big reservation hash never blocks Redis.
Stock drift (I5) has a module of its own, reconciliation/checks/drift.py.
"""

from orders.models import Order
from reconciliation.checks import orders as orders_checks
from reconciliation.checks.scope import LIVE, fetch_rows, placeholders
from reconciliation.findings import (
    DUPLICATE_ORDER,
    MAX_ORDER_NUMBERS,
    OVER_LIMIT,
    OVERSOLD,
    STRANDED_RESERVATION,
    Finding,
)
from seckill import intents, stock
from seckill.models import SeckillOrder

MAX_LISTED_RESERVATIONS = 50


_NEWEST_LIVE_ORDERS_SQL = f"""
SELECT o.number, so.quantity
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE so.activity_id = %s AND o.status IN ({placeholders(LIVE)})
 ORDER BY so.id DESC LIMIT %s
"""  # noqa: S608 - only %s placeholders are formatted in

_CUSTOMER_LIVE_ORDERS_SQL = f"""
SELECT so.activity_id, so.user_id, o.number
  FROM seckill_seckillorder so JOIN orders_order o ON o.id = so.order_id
 WHERE (so.activity_id, so.user_id) IN ({{pairs}}) AND o.status IN ({placeholders(LIVE)})
 ORDER BY o.id
"""  # noqa: S608 - only %s placeholders are formatted in


def _newest_live_orders(sale_id, units_wanted):
    """Numbers of the newest live orders of a sale holding at least `units_wanted` units."""
    numbers, units = [], 0
    for number, quantity in fetch_rows(_NEWEST_LIVE_ORDERS_SQL, [sale_id, *LIVE, min(units_wanted, MAX_ORDER_NUMBERS)]):
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
    for sale_id, user_id, number in fetch_rows(sql, [*params, *LIVE]):
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
    duplicated = [rid for (rid,) in fetch_rows(_DUPLICATE_RESERVATIONS_SQL, [])]
    links = {}
    if duplicated:
        sql = _LINKS_OF_RESERVATIONS_SQL.format(ids=placeholders(duplicated))
        for sale_id, reservation_id, user_id, number, status in fetch_rows(sql, duplicated):
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


# --- stranded_reservation (I2) -----------------------------------------------------------


def stranded_reservations(scope):
    """Reservations in Redis with no order after the grace period: units that would never
    sell. Reservations whose intent still waits in the stream are left out (the writer
    is behind; their order is coming), as are those younger than the grace period. When
    too many intents wait to read them all, the sale is noted and left for a later run."""
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
        waiting = intents.waiting_reservations(sale.id)
        if waiting is None:
            scope.notes.append(f"sale {sale.id}: the order writers are far behind; stranded reservations not checked")
            continue
        stranded = [e for e in old if e.reservation_id not in waiting]
        if stranded:
            # The open entries were read from the orders before the stream: an intent written
            # between the two reads left the stream with its order committed. Asked again
            # now, after the stream, such an order is seen (the stranded sweep reads in
            # this order for the same reason, seckill/services/reservations.py).
            written = set(
                SeckillOrder.objects.filter(reservation_id__in=[e.reservation_id for e in stranded]).values_list(
                    "reservation_id", flat=True
                )
            )
            stranded = sorted((e for e in stranded if e.reservation_id not in written), key=lambda e: e.reserved_ms)
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

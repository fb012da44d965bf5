"""The order transaction of a flash-sale purchase: one transaction, every invariant checked by the DB.

The orders and their items are written by the orders app (orders/rows.py); this module
writes the sale's own rows beside them in the same transaction: the customer's quota
row, the link from order to reservation, and the decrement of the sale's DB pool.
"""

from datetime import timedelta

from django.db import IntegrityError, connection
from django.utils import timezone

from core.db import atomic_with_retry
from locks import StaleTokenError, lock_metrics
from orders.models import new_order_number
from orders.rows import OrderLine, insert_order_rows
from seckill import keys
from seckill.errors import LimitReached, SoldOut
from shop.models import Product


class DuplicateReservation(Exception):
    """The reservation already has its order (a redelivered task, a retried request)."""


# The customer's quota row, in one statement: per-customer limit and fencing together.
# - limit (I3): the CHECK (units_held <= unit_limit) fails the statement (error 4025);
# - fencing: a token lower than one already written sets units_held to NULL, which the
#   NOT NULL column refuses (error 1048). Assignments run left to right, so the IF sees
#   the row's old fence_token. Token 0 means "not written under the customer lock"
#   (async tickets, written later by a worker) and is never refused as stale.
_QUOTA_UPSERT = (
    "INSERT INTO seckill_seckillquota (activity_id, user_id, units_held, unit_limit, fence_token) "
    "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    "units_held = IF(VALUES(fence_token) > 0 AND fence_token > VALUES(fence_token), NULL, "
    "units_held + VALUES(units_held)), "
    "fence_token = GREATEST(fence_token, VALUES(fence_token))"
)


def _integrity_kind(exc):
    message = str(exc.args[-1]) if exc.args else ""
    if "seckill_quota_within_limit" in message:
        return "limit"
    if "units_held" in message and "cannot be null" in message:
        return "stale"
    if "reservation_id" in message or "order_unique_idempotency_key" in message or "PRIMARY" in message:
        return "duplicate"
    return "other"


def seckill_order_create(
    *, sale, user_id, quantity, reservation_id, fencing_token, idempotency_key=None, ticket_id=None
):
    """Write the order of a reservation: one transaction, every invariant checked by the DB.

    - fencing and I3, in the customer's quota row: the write is refused if a newer
      holder of the customer's lock has written since (the stale holder of the
      incident in docs/architecture.md), and its CHECK refuses more units than the limit;
    - I4: the order, its item and the unique reservation link, together;
    - I1: the conditional decrement of the sale's DB pool, last, so the sale's one hot
      row stays locked only from that statement to the commit.
    Raises LimitReached, SoldOut, StaleTokenError or DuplicateReservation; nothing is
    written then. `fencing_token` 0 writes without the fencing check (async tickets).
    """
    try:
        return _seckill_order_tx(
            sale=sale,
            user_id=user_id,
            quantity=quantity,
            reservation_id=reservation_id,
            fencing_token=fencing_token,
            idempotency_key=idempotency_key,
            ticket_id=ticket_id,
        )
    except IntegrityError as exc:
        kind = _integrity_kind(exc)
        if kind == "limit":
            raise LimitReached() from exc
        if kind == "stale":
            lock_metrics.stale_token_rejected.labels(backend="redis", lock="seckill_customer").inc()
            raise StaleTokenError(keys.customer_lock_name(sale.id, user_id), fencing_token, "a higher one") from exc
        if kind == "duplicate":
            raise DuplicateReservation() from exc
        raise


class PoolEmpty(SoldOut):
    """The DB pool had fewer units than Redis believed: Redis was ahead and must not grow."""


_LINK_INSERT = (
    "INSERT INTO seckill_seckillorder (order_id, activity_id, user_id, quantity, reservation_id, fencing_token, "
    "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_TICKET_DONE = (
    "UPDATE seckill_seckillticket SET status = 'done', order_id = %s, updated_at = %s "
    "WHERE id = %s AND status = 'pending'"
)
_POOL_TAKE = (
    "UPDATE seckill_seckillactivity SET stock_available = stock_available - %s WHERE id = %s AND stock_available >= %s"
)


@atomic_with_retry()
def _seckill_order_tx(*, sale, user_id, quantity, reservation_id, fencing_token, idempotency_key, ticket_id):
    now = timezone.now()
    line = OrderLine(
        number=new_order_number(),
        user_id=user_id,
        product=Product(pk=sale.product_id, slug=sale.product_slug, name=sale.product_name),
        quantity=quantity,
        unit_price=sale.price,
        expires_at=now + timedelta(minutes=sale.payment_minutes),
        idempotency_key=idempotency_key or None,
    )
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_QUOTA_UPSERT, [sale.id, user_id, quantity, sale.per_user_limit, fencing_token])
        [written] = insert_order_rows([line], now=now)
        order_id = written.order.pk
        cursor.execute(_LINK_INSERT, [order_id, sale.id, user_id, quantity, reservation_id, fencing_token, stamp])
        if ticket_id:
            cursor.execute(_TICKET_DONE, [order_id, stamp, ticket_id])
            if cursor.rowcount != 1:
                raise DuplicateReservation()
        cursor.execute(_POOL_TAKE, [quantity, sale.id, quantity])  # I1, last: the hot row is locked till commit
        if cursor.rowcount != 1:
            raise PoolEmpty()
    return written

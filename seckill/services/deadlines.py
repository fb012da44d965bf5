"""Payment deadlines of flash-sale orders, and units coming back when an order dies.

purchase.lua files each reservation under its payment deadline in the sale's `due`
sorted set, in the same step that reserves it; a beat job expires the orders whose
deadline has passed. Units come back in the transaction that moves the order's status,
so they return exactly once (orders' version-checked transitions): to the sale while it
still holds its units, to the product once the sale has given its unsold units back.
"""

from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import InvalidState
from orders.models import Order
from orders.services import order_expire, return_stock
from seckill import buckets, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota


def release_order_units(sender, order, reason, **kwargs):
    """Receiver of orders.signals.order_released: a flash-sale order was cancelled or expired.

    Runs inside the transaction that changed the order's status, so the units and the
    customer's quota come back exactly when, and only if, the status change commits;
    a second expiry of the same order never gets here (its version check failed).

    Where the units go depends on whether the sale has given its unsold units back yet
    (seckill/services/lifecycle.py activity_return_unsold): before that, to the sale's
    DB pool, and Redis follows after the commit, at most once per order (restock.lua);
    after it, to the product's free stock and `stock_returned`, and Redis is left at 0
    (the sale is over). The pool UPDATE is conditional on `returned_at IS NULL` and takes
    the sale row's lock, so against a return running at the same moment it either
    commits first (the return then counts the units in the pool) or waits and finds the
    sale returned: the units go to exactly one place.
    """
    if order.source != Order.Source.SECKILL:
        return
    link = SeckillOrder.objects.get(order_id=order.pk)
    SeckillQuota.objects.filter(activity_id=link.activity_id, user_id=link.user_id).update(
        units_held=F("units_held") - link.quantity
    )
    to_pool = SeckillActivity.objects.filter(pk=link.activity_id, returned_at__isnull=True).update(
        stock_available=F("stock_available") + link.quantity
    )
    if not to_pool:  # the sale is over and returned its unsold units: these follow them
        SeckillActivity.objects.filter(pk=link.activity_id).update(stock_returned=F("stock_returned") + link.quantity)
        product_id = SeckillActivity.objects.filter(pk=link.activity_id).values_list("product_id", flat=True).get()
        return_stock(product_id=product_id, quantity=link.quantity)
        return
    transaction.on_commit(
        partial(
            stock.restock,  # to the bucket it was reserved from: its customer's home
            activity_id=buckets.home(link.activity_id, link.user_id),
            order_number=order.number,
            user_id=link.user_id,
            quantity=link.quantity,
            reservation_id=link.reservation_id,
        ),
        robust=True,
    )


def expire_due_orders(*, activity_id, now=None, batch=500):
    """The per-order countdown: expire this sale's orders whose payment deadline has passed.

    purchase.lua puts each reservation in the sale's `due` sorted set with its deadline,
    in the same step that reserves it, so a purchase pays no extra round trip and no
    Celery message for its countdown; a beat job runs this every few seconds. Each
    order moves by order_expire's version-checked transition, so a paid order is left
    alone and a second run (two schedulers) expires nothing twice. A due reservation
    whose order is not written yet (its intent still waits for the writer) stays in the
    queue; its order carries the same deadline and expires on a later run. Returns how
    many orders this call expired.
    """
    now = now or timezone.now()
    return sum(_expire_due(space, now=now, batch=batch) for space in buckets.spaces(activity_id))


def _expire_due(activity_id, *, now, batch):
    """expire_due_orders for one key space (the sale's, or one bucket's due set)."""
    due = stock.due_reservations(activity_id, until_ms=stock.server_time_ms(), batch=batch)
    if not due:
        return 0
    orders = {
        link.reservation_id: link.order
        for link in SeckillOrder.objects.filter(reservation_id__in=due).select_related("order")
    }
    waiting = stock.still_reserved(activity_id, [r for r in due if r not in orders])
    expired, finished, later = 0, [], {}
    for reservation_id in due:
        order = orders.get(reservation_id)
        if order is None:
            if reservation_id not in waiting:  # never became an order: nothing to expire
                finished.append(reservation_id)
            continue
        if order.status == Order.Status.PENDING_PAYMENT and order.expires_at > now:
            later[reservation_id] = int(order.expires_at.timestamp() * 1000)
            continue
        if order.status == Order.Status.PENDING_PAYMENT:
            try:
                order_expire(order=order, now=now)
                expired += 1
            except InvalidState:
                pass  # paid or cancelled a moment ago
        finished.append(reservation_id)
    stock.forget_due(activity_id, finished)
    stock.postpone(activity_id, later)
    return expired

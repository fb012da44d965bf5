"""Payment deadlines of flash-sale orders, and units coming back when an order dies.

purchase.lua files each reservation under its payment deadline in the sale's `due`
sorted set, in the same step that reserves it; a beat job expires the orders whose
deadline has passed. Units come back to the sale in the transaction that moves the
order's status, so they return exactly once (orders' version-checked transitions).
"""

from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import InvalidState
from orders.models import Order
from orders.services import order_expire
from seckill import stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota


def release_order_units(sender, order, reason, **kwargs):
    """Receiver of orders.signals.order_released: a flash-sale order was cancelled or expired.

    Runs inside the transaction that changed the order's status, so the DB pool and the
    customer's quota grow back exactly when, and only if, the status change commits;
    a second expiry of the same order never gets here (its version check failed).
    Redis follows after the commit, at most once per order (restock.lua).
    """
    if order.source != Order.Source.SECKILL:
        return
    link = SeckillOrder.objects.get(order_id=order.pk)
    SeckillActivity.objects.filter(pk=link.activity_id).update(stock_available=F("stock_available") + link.quantity)
    SeckillQuota.objects.filter(activity_id=link.activity_id, user_id=link.user_id).update(
        units_held=F("units_held") - link.quantity
    )
    transaction.on_commit(
        partial(
            stock.restock,
            activity_id=link.activity_id,
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

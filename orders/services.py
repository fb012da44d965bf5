"""Order writes: create from a cart, pay, cancel, expire.

Every state change is a version-checked conditional UPDATE (core/versioning.py), so
two writers racing on one order (a payment and a cancel, a payment and the expiry
sweep) end with exactly one of them applied; the loser re-reads, sees the new state
and gets a clear InvalidState.
"""

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.db import atomic_with_retry
from core.errors import InsufficientStock, InvalidInput, InvalidState, NotFound, ProductUnavailable, ShopError
from core.versioning import update_with_version
from orders.models import Order, OrderItem
from orders.notifications import order_confirmation_on_commit
from orders.payments import PaymentDeclined
from orders.payments import gateway as default_gateway
from orders.signals import order_released
from shop.models import Product

log = logging.getLogger(__name__)


class PaymentWindowClosed(InvalidState):
    code = "payment_window_closed"
    default_detail = "The payment window for this order has closed; it has expired and its stock was released."


class PaymentFailed(ShopError):
    code = "payment_failed"
    status = 402
    default_detail = "The payment was declined."


@dataclass(frozen=True)
class CartLine:
    product_id: int
    quantity: int


def _normalise_lines(lines):
    """Merge repeated products and check quantities before any row is touched."""
    merged = {}
    for line in lines:
        if not isinstance(line.quantity, int) or isinstance(line.quantity, bool) or line.quantity < 1:
            raise InvalidInput("Quantity must be a whole number of at least 1.")
        merged[line.product_id] = merged.get(line.product_id, 0) + line.quantity
    if not merged:
        raise InvalidInput("The cart is empty.")
    if max(merged.values()) > settings.CART_MAX_QUANTITY:
        raise InvalidInput(f"At most {settings.CART_MAX_QUANTITY} of one product per order.")
    # Ascending primary key: two carts sharing products lock them in the same order,
    # which rules out a deadlock between them.
    return sorted(merged.items())


def take_stock(*, product_id, quantity):
    """Take `quantity` units of free stock; returns the product row as it was charged.

    Safe because the stock check and the price are read from the same row version the
    UPDATE then requires: if anything changed in between (a sale, a price edit) the
    UPDATE matches nothing and the check runs again on the new row. The CHECK
    constraint on Product.stock is the last line: even a buggy caller cannot go below 0.
    """

    def decide(product):
        if not product.is_active:
            raise ProductUnavailable(f"{product.name} is not on sale.")
        if product.stock < quantity:
            raise InsufficientStock(
                f"Only {product.stock} of {product.name} left." if product.stock else f"{product.name} is sold out.",
                product=product.slug,
                available=product.stock,
            )
        return {"stock": F("stock") - quantity}

    return update_with_version(Product.objects, pk=product_id, decide=decide)


def return_stock(*, product_id, quantity):
    """Give units back to free stock. An increment commutes, so no version check is needed;
    the version still moves so that an admin editing the product sees a conflict."""
    Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity, version=F("version") + 1)


def order_create(*, user, lines, idempotency_key=None):
    """Create a pending order from cart lines, taking stock for each one.

    Returns (order, created). With an idempotency key, a repeated call returns the
    first call's order and takes no stock: the unique (user, key) index makes a second
    order impossible even when two identical requests race, and the loser's whole
    transaction, stock included, rolls back.
    """
    items = _normalise_lines(lines)
    if idempotency_key:
        existing = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    try:
        return _order_create_tx(user=user, items=items, idempotency_key=idempotency_key), True
    except IntegrityError:
        if idempotency_key:
            existing = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if existing:
                return existing, False
        raise


@atomic_with_retry()
def _order_create_tx(*, user, items, idempotency_key):
    known = set(Product.objects.filter(pk__in=[pk for pk, _ in items]).values_list("pk", flat=True))
    missing = [pk for pk, _ in items if pk not in known]
    if missing:
        raise NotFound("A product in the cart no longer exists.", products=missing)
    charged = [(take_stock(product_id=pk, quantity=qty), qty) for pk, qty in items]
    now = timezone.now()
    order = Order.objects.create(
        user=user,
        total=sum(product.price * qty for product, qty in charged),
        idempotency_key=idempotency_key or None,
        expires_at=now + timedelta(minutes=settings.ORDER_PAYMENT_MINUTES),
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, product=product, quantity=qty, unit_price=product.price) for product, qty in charged
    )
    order_confirmation_on_commit([order.pk])  # queued only if this transaction commits
    return order


def _transition(order, *, to, allowed_from, extra=None, check=None):
    """Move `order` to status `to` if it is in `allowed_from`, as one version-checked UPDATE."""

    def decide(row):
        if row.status not in allowed_from:
            raise InvalidState(f"Order {row.number} is {row.get_status_display().lower()}.", status=row.status)
        if check:
            check(row)
        return {"status": to, **(extra or {})}

    return update_with_version(Order.objects, pk=order.pk, decide=decide)


def _release(order, *, reason):
    """Return the order's units to wherever they came from, inside the caller's transaction."""
    if order.source == Order.Source.CHECKOUT:
        for item in order.items.all():
            return_stock(product_id=item.product_id, quantity=item.quantity)
    order_released.send(sender=Order, order=order, reason=reason)


@atomic_with_retry()
def order_cancel(*, order):
    """Cancel a pending order and return its stock in the same transaction, so a
    cancelled order without its stock back (or the reverse) cannot be observed."""
    row = _transition(
        order,
        to=Order.Status.CANCELLED,
        allowed_from=(Order.Status.PENDING_PAYMENT,),
        extra={"closed_at": timezone.now()},
    )
    _release(row, reason="cancelled")
    return row


@atomic_with_retry()
def order_expire(*, order, now=None):
    """Expire a pending order whose payment window has closed, returning its stock once.

    The deadline is re-checked on the row the UPDATE requires, so a payment that lands
    first wins and the expiry then refuses; two sweeps expiring the same order change
    it once, because the second one's version no longer matches.
    """
    now = now or timezone.now()

    def overdue(row):
        if row.expires_at is None or row.expires_at > now:
            raise InvalidState(f"Order {row.number} is still inside its payment window.")

    row = _transition(
        order,
        to=Order.Status.EXPIRED,
        allowed_from=(Order.Status.PENDING_PAYMENT,),
        extra={"closed_at": now},
        check=overdue,
    )
    _release(row, reason="expired")
    return row


def order_pay(*, order, gateway=None):
    """Take the (simulated) payment, then mark the order paid if it is still payable.

    If the order was cancelled or expired while the charge ran, the charge is refunded
    and the customer is told why; a paid order is never also cancelled.
    """
    gateway = gateway or default_gateway
    order.refresh_from_db()
    now = timezone.now()
    if order.status == Order.Status.PENDING_PAYMENT and order.expires_at and order.expires_at <= now:
        with contextlib.suppress(InvalidState):  # somebody else closed it first; the answer is the same
            order_expire(order=order, now=now)
        raise PaymentWindowClosed()
    if order.status != Order.Status.PENDING_PAYMENT:
        raise InvalidState(f"Order {order.number} is {order.get_status_display().lower()} and cannot be paid.")

    try:
        charge = gateway.charge(amount=order.total, description=f"Order {order.number}")
    except PaymentDeclined as exc:
        raise PaymentFailed(str(exc)) from exc

    def still_payable(row):
        if row.expires_at and row.expires_at <= timezone.now():
            raise PaymentWindowClosed()

    try:
        with transaction.atomic():
            return _transition(
                order,
                to=Order.Status.PAID,
                allowed_from=(Order.Status.PENDING_PAYMENT,),
                extra={"paid_at": timezone.now(), "payment_reference": charge.reference},
                check=still_payable,
            )
    except ShopError:
        gateway.refund(charge)
        log.info("refunded %s for order %s: it changed state during payment", charge.reference, order.number)
        raise


def expire_overdue_orders(*, now=None, batch=500):
    """Expire every pending order past its deadline; returns how many this call expired."""
    now = now or timezone.now()
    overdue = list(
        Order.objects.filter(status=Order.Status.PENDING_PAYMENT, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch]
    )
    expired = 0
    for pk in overdue:
        try:
            order_expire(order=Order(pk=pk), now=now)
            expired += 1
        except InvalidState:
            continue  # paid, cancelled or expired by somebody else first
    return expired

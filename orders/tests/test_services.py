from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import InsufficientStock, InvalidInput, InvalidState, NotFound, ProductUnavailable
from core.http import clean_idempotency_key
from orders import services
from orders.models import Order
from orders.payments import PaymentDeclined, SimulatedGateway
from orders.services import CartLine, order_create
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def stock(product):
    return Product.objects.get(pk=product.pk).stock


def test_create_takes_stock_prices_from_the_db_and_sets_a_payment_deadline(customer, product):
    other = ProductFactory(price="5.50", stock=3)
    order, created = order_create(user=customer, lines=[CartLine(product.pk, 2), CartLine(other.pk, 3)])
    assert created and order.status == Order.Status.PENDING_PAYMENT
    assert order.total == 2 * 100 + 3 * 5.5
    assert {(i.product_id, i.quantity, i.unit_price) for i in order.items.all()} == {
        (product.pk, 2, 100),
        (other.pk, 3, 5.5),
    }
    assert stock(product) == 8 and stock(other) == 0
    assert timezone.now() < order.expires_at <= timezone.now() + timedelta(minutes=30)


def test_repeated_lines_are_merged(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1), CartLine(product.pk, 2)])
    assert [i.quantity for i in order.items.all()] == [3] and stock(product) == 7


def test_insufficient_stock_is_refused_and_nothing_changes(customer, product):
    other = ProductFactory(stock=5)
    with pytest.raises(InsufficientStock) as excinfo:
        order_create(user=customer, lines=[CartLine(other.pk, 1), CartLine(product.pk, 11)])
    assert excinfo.value.status == 409 and "Only 10" in excinfo.value.detail
    assert stock(product) == 10 and stock(other) == 5  # the first line's decrement rolled back
    assert not Order.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1, 100, 10**9, "abc", None, True])
def test_bad_quantity_is_refused_before_any_write(customer, product, quantity):
    with pytest.raises(InvalidInput):
        order_create(user=customer, lines=[CartLine(product.pk, quantity)])
    assert stock(product) == 10 and not Order.objects.exists()


def test_inactive_and_missing_products_are_refused(customer, product):
    hidden = ProductFactory(is_active=False, stock=5)
    with pytest.raises(ProductUnavailable):
        order_create(user=customer, lines=[CartLine(hidden.pk, 1)])
    with pytest.raises(NotFound):
        order_create(user=customer, lines=[CartLine(999999, 1)])
    assert stock(hidden) == 5 and not Order.objects.exists()


def test_same_idempotency_key_returns_the_first_order_and_takes_stock_once(customer, product):
    first, created = order_create(user=customer, lines=[CartLine(product.pk, 2)], idempotency_key="k-1")
    again, created_again = order_create(user=customer, lines=[CartLine(product.pk, 2)], idempotency_key="k-1")
    assert created and not created_again and again.pk == first.pk
    assert stock(product) == 8 and Order.objects.count() == 1


def test_idempotency_keys_are_per_customer(customer, other_customer, product):
    a, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)], idempotency_key="same")
    b, _ = order_create(user=other_customer, lines=[CartLine(product.pk, 1)], idempotency_key="same")
    assert a.pk != b.pk and stock(product) == 8


def test_order_numbers_are_random_not_sequential(customer, product):
    numbers = [order_create(user=customer, lines=[CartLine(product.pk, 1)])[0].number for _ in range(3)]
    assert len(set(numbers)) == 3
    assert all(n.startswith("FS-") and len(n) == 17 for n in numbers)


def test_pay_marks_paid_and_keeps_the_stock_taken(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    paid = services.order_pay(order=order)
    assert paid.status == Order.Status.PAID and paid.payment_reference.startswith("sim_")
    assert Order.objects.get(pk=order.pk).paid_at is not None and stock(product) == 8


def test_declined_payment_leaves_the_order_pending(customer, product):
    class Declining(SimulatedGateway):
        def charge(self, *, amount, description):
            raise PaymentDeclined("Card declined.")

    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    with pytest.raises(services.PaymentFailed):
        services.order_pay(order=order, gateway=Declining())
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_cancel_returns_the_stock_once(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 4)])
    services.order_cancel(order=order)
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED and stock(product) == 10
    with pytest.raises(InvalidState):
        services.order_cancel(order=order)
    assert stock(product) == 10


def test_paid_order_cannot_be_cancelled_and_cancelled_order_cannot_be_paid(customer, product):
    paid, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    services.order_pay(order=paid)
    with pytest.raises(InvalidState):
        services.order_cancel(order=paid)
    cancelled, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    services.order_cancel(order=cancelled)
    with pytest.raises(InvalidState):
        services.order_pay(order=cancelled)
    assert stock(product) == 9


def test_expire_only_after_the_deadline_and_returns_stock_once(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 3)])
    with pytest.raises(InvalidState):
        services.order_expire(order=order)
    later = order.expires_at + timedelta(seconds=1)
    services.order_expire(order=order, now=later)
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED and stock(product) == 10
    with pytest.raises(InvalidState):
        services.order_expire(order=order, now=later)
    assert stock(product) == 10


def test_paying_after_the_deadline_is_refused_and_expires_the_order(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.PaymentWindowClosed) as excinfo:
        services.order_pay(order=order)
    assert "payment window" in excinfo.value.detail
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED and stock(product) == 10


def test_sweep_expires_overdue_orders_once_even_when_run_twice(customer, product):
    overdue, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    fresh, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    Order.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert services.expire_overdue_orders() == 1
    assert services.expire_overdue_orders() == 0
    assert Order.objects.get(pk=overdue.pk).status == Order.Status.EXPIRED
    assert Order.objects.get(pk=fresh.pk).status == Order.Status.PENDING_PAYMENT
    assert stock(product) == 9


def test_idempotency_key_format_is_checked():
    assert clean_idempotency_key("") is None
    assert clean_idempotency_key("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in ["x" * 65, "has space", "naïve", "a/b"]:
        with pytest.raises(InvalidInput):
            clean_idempotency_key(bad)

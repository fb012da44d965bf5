"""Checkout-order checks of reconciliation (reconciliation/checks/orders.py), on the real MariaDB."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order
from orders.services import CartLine, order_cancel, order_create
from reconciliation.checks import orders as reconciliation
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def checkout(user, *lines):
    return order_create(user=user, lines=[CartLine(product.pk, quantity) for product, quantity in lines])[0]


def move_back(order, seconds):
    created = timezone.now() - timedelta(seconds=seconds)
    Order.objects.filter(pk=order.pk).update(created_at=created, expires_at=created + timedelta(minutes=30))


def test_the_same_cart_checked_out_twice_within_the_window_is_flagged_for_review(customer, other_customer, product):
    other = ProductFactory(stock=10)
    first = checkout(customer, (product, 1), (other, 2))
    second = checkout(customer, (other, 2), (product, 1))  # same items, other order of lines
    checkout(customer, (product, 1))  # different items
    checkout(other_customer, (product, 1), (other, 2))  # another customer

    [finding] = reconciliation.repeated_checkouts()

    assert finding.kind == "duplicate_order" and finding.order_numbers == (first.number, second.number)
    assert finding.detail["severity"] == "review" and finding.detail["user_id"] == customer.pk
    assert finding.detail["items"] == f"{product.pk}x1,{other.pk}x2"


def test_a_chain_of_repeats_is_one_finding_and_a_later_one_starts_afresh(customer, product):
    orders = [checkout(customer, (product, 1)) for _ in range(4)]
    for order, seconds_ago in zip(orders, (1000, 280, 190, 100), strict=True):
        move_back(order, seconds_ago)  # gaps: 720 s, then 90 s, 90 s

    [finding] = reconciliation.repeated_checkouts()

    assert finding.order_numbers == tuple(o.number for o in orders[1:])
    assert finding.detail["seconds_between_first_and_last"] == 180


def test_cancelled_repeats_and_repeats_outside_the_window_are_not_flagged(customer, product):
    kept = checkout(customer, (product, 1))
    order_cancel(order=checkout(customer, (product, 1)))
    move_back(checkout(customer, (product, 2)), 600)
    checkout(customer, (product, 2))

    assert reconciliation.repeated_checkouts() == []
    assert Order.objects.filter(pk=kept.pk, status="pending_payment").exists()


def test_repeats_older_than_the_lookback_are_left_out_unless_asked_for(customer, product):
    first, second = checkout(customer, (product, 1)), checkout(customer, (product, 1))
    days = reconciliation.REPEATED_CHECKOUT_LOOKBACK.days + 1
    move_back(first, days * 86400 + 30)
    move_back(second, days * 86400)

    assert reconciliation.repeated_checkouts() == []
    since = timezone.now() - timedelta(days=days + 1)
    assert [f.order_numbers for f in reconciliation.repeated_checkouts(since=since)] == [(first.number, second.number)]


@pytest.mark.django_db(transaction=True)
def test_checkout_orders_sharing_an_idempotency_key_are_found_once_the_unique_index_is_gone(customer, product):
    first, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)], idempotency_key="k-1")
    second = checkout(customer, (product, 2))
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE orders_order DROP INDEX order_unique_idempotency_key")
    try:
        Order.objects.filter(pk=second.pk).update(idempotency_key="k-1")
        [finding] = reconciliation.duplicate_checkout_keys()
    finally:
        Order.objects.filter(pk=second.pk).update(idempotency_key=None)
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE orders_order ADD UNIQUE INDEX order_unique_idempotency_key (user_id, idempotency_key)"
            )
    assert finding.order_numbers == (first.number, second.number)
    assert finding.detail["reason"] == "same_idempotency_key" and finding.detail["severity"] == "error"

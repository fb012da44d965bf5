"""Races released by a barrier, as a CountDownLatch would; each ends on the invariant."""

import pytest
from django.contrib.auth import get_user_model

from core.errors import InsufficientStock, InvalidState
from orders import services
from orders.models import Order, OrderItem
from orders.services import CartLine, order_create
from shop.models import Product
from shop.tests.concurrency import run_concurrently
from shop.tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_buyers_released_together_for_the_last_ten_units_make_exactly_ten_orders():
    product = ProductFactory(stock=10)
    buyers = [UserFactory(username=f"buyer{i}") for i in range(50)]

    def buy(i):
        return order_create(user=buyers[i], lines=[CartLine(product.pk, 1)])[0]

    results = run_concurrently(buy, 50)
    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, InsufficientStock)]
    assert len(orders) == 10 and len(refused) == 40, [type(r).__name__ for r in results]
    assert Product.objects.get(pk=product.pk).stock == 0
    assert Order.objects.count() == 10
    assert sum(OrderItem.objects.values_list("quantity", flat=True)) == 10


def test_same_idempotency_key_from_ten_parallel_requests_makes_one_order():
    product = ProductFactory(stock=10)
    buyer = UserFactory(username="clicker")
    results = run_concurrently(
        lambda i: order_create(user=buyer, lines=[CartLine(product.pk, 1)], idempotency_key="one-click")[0].pk, 10
    )
    assert len(set(results)) == 1, results
    assert Order.objects.count() == 1 and Product.objects.get(pk=product.pk).stock == 9


@pytest.mark.slow
def test_pay_racing_cancel_fifty_times_ends_in_exactly_one_of_them():
    product = ProductFactory(stock=100)
    buyer = UserFactory(username="racer")
    outcomes = {"paid": 0, "cancelled": 0}
    for _ in range(50):
        order, _ = order_create(user=buyer, lines=[CartLine(product.pk, 1)])
        before = Product.objects.get(pk=product.pk).stock
        actions = [services.order_pay, services.order_cancel]
        results = run_concurrently(lambda i, actions=actions, order=order: actions[i](order=order), 2)
        winners = [r for r in results if isinstance(r, Order)]
        losers = [r for r in results if isinstance(r, InvalidState)]
        assert len(winners) == 1 and len(losers) == 1, results
        final = Order.objects.get(pk=order.pk)
        assert final.status == winners[0].status
        after = Product.objects.get(pk=product.pk).stock
        expected = before + 1 if final.status == Order.Status.CANCELLED else before
        assert after == expected, (final.status, before, after)
        outcomes[final.status] += 1
    assert sum(outcomes.values()) == 50
    cancelled = Order.objects.filter(status=Order.Status.CANCELLED).count()
    assert Product.objects.get(pk=product.pk).stock == 100 - 50 + cancelled
    assert get_user_model().objects.count() == 1

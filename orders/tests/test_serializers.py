from datetime import timedelta

import pytest
from django.utils import timezone

from orders import services
from orders.models import Order
from orders.serializers import OrderOutputSerializer, order_payload
from orders.services import CartLine, order_create
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", ["pending", "paid", "cancelled"])
def test_order_payload_is_exactly_the_serializers_output(customer, state):
    lamp, pan = ProductFactory(slug="lamp", price="19.90"), ProductFactory(slug="pan", price="45.00")
    order, _ = order_create(user=customer, lines=[CartLine(lamp.pk, 2), CartLine(pan.pk, 1)])
    if state == "paid":
        services.order_pay(order=order)
    if state == "cancelled":
        services.order_cancel(order=order)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(microseconds=123))
    fresh = Order.objects.prefetch_related("items__product").get(pk=order.pk)
    assert order_payload(fresh) == OrderOutputSerializer(fresh).data

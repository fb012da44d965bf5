"""The order writer writes plain SQL; the rows must be exactly what the ORM would have written."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from seckill import keys, purchase, services, stock
from seckill.models import SeckillOrder, SeckillQuota
from seckill.tests.conftest import create_sale, lua_reserve
from seckill.tests.invariants import assert_invariants

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_read_back_through_the_orm_match_the_returned_order(customer):
    activity = create_sale(stock=5, limit=2, payment_minutes=10)
    before = timezone.now()
    returned = purchase.purchase(activity_id=activity.pk, user=customer, quantity=2, idempotency_key="k1").order
    stored = Order.objects.get(pk=returned.pk)
    for field in ("number", "user_id", "status", "source", "total", "version", "idempotency_key", "expires_at",
                  "paid_at", "closed_at", "payment_reference", "created_at", "updated_at"):  # fmt: skip
        assert getattr(stored, field) == getattr(returned, field), field
    assert stored.source == "seckill" and stored.total == activity.price * 2
    assert before <= stored.created_at <= timezone.now()
    # The payment window runs from the reservation (Redis's clock), a moment before the row is written.
    assert timedelta(minutes=10) - timedelta(seconds=2) < stored.expires_at - stored.created_at <= timedelta(minutes=10)
    item = stored.items.get()
    assert (item.product_id, item.quantity, item.unit_price) == (activity.product_id, 2, activity.price)
    link = SeckillOrder.objects.get(order=stored)
    assert (link.activity_id, link.user_id, link.quantity) == (activity.pk, customer.pk, 2)
    assert SeckillQuota.objects.get(activity=activity, user=customer).units_held == 2
    assert returned.items.get().product.slug == activity.product.slug  # usable like a loaded order
    assert_invariants(activity, expect_sold=2)


def test_each_reservation_is_filed_under_its_payment_deadline(customer):
    activity = create_sale(stock=5, payment_minutes=15)
    order = purchase.purchase(activity_id=activity.pk, user=customer, quantity=1).order
    rid = SeckillOrder.objects.get(order=order).reservation_id
    deadline = stock.redis().zscore(keys.due(activity.pk), rid)
    assert abs(deadline / 1000 - order.expires_at.timestamp()) < 2


def _past_deadline(activity, order):
    rid = SeckillOrder.objects.get(order=order).reservation_id
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    stock.redis().zadd(keys.due(activity.pk), {rid: 1})
    return rid


def test_due_orders_expire_once_and_their_units_come_back(customer, other_customer):
    activity = create_sale(stock=3)
    unpaid = purchase.purchase(activity_id=activity.pk, user=customer, quantity=1).order
    paid = purchase.purchase(activity_id=activity.pk, user=other_customer, quantity=1).order
    from orders.services import order_pay

    order_pay(order=paid)
    _past_deadline(activity, unpaid)
    _past_deadline(activity, paid)
    assert services.expire_due_orders(activity_id=activity.pk) == 1
    assert services.expire_due_orders(activity_id=activity.pk) == 0
    assert Order.objects.get(pk=unpaid.pk).status == "expired" and Order.objects.get(pk=paid.pk).status == "paid"
    assert stock.redis().zcard(keys.due(activity.pk)) == 0
    assert stock.remaining(activity.pk) == 2
    assert_invariants(activity, expect_sold=1)


def test_an_order_with_a_later_deadline_is_postponed_not_expired(customer):
    activity = create_sale(stock=3)
    order = purchase.purchase(activity_id=activity.pk, user=customer, quantity=1).order
    rid = SeckillOrder.objects.get(order=order).reservation_id
    stock.redis().zadd(keys.due(activity.pk), {rid: 1})  # the reservation was older than the order
    assert services.expire_due_orders(activity_id=activity.pk) == 0
    assert Order.objects.get(pk=order.pk).status == "pending_payment"
    assert abs(stock.redis().zscore(keys.due(activity.pk), rid) / 1000 - order.expires_at.timestamp()) < 1


def test_a_given_back_reservation_leaves_the_deadline_queue(customer):
    activity = create_sale(stock=3)
    lua_reserve(activity, user_id=customer.pk, quantity=1, reservation_id="r" * 32)
    assert stock.redis().zcard(keys.due(activity.pk)) == 1
    stock.give_back(activity_id=activity.pk, reservation_id="r" * 32)
    assert stock.redis().zcard(keys.due(activity.pk)) == 0

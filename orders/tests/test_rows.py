"""orders/rows.py: the rows its plain SQL writes are exactly what the ORM reads back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Order, OrderItem, new_order_number
from orders.rows import OrderLine, insert_order_rows
from shop.tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _lines(product, users, key=None):
    deadline = timezone.now() + timedelta(minutes=15)
    return [
        OrderLine(
            number=new_order_number(),
            user_id=user.pk,
            product=product,
            quantity=1 + i % 2,
            unit_price=Decimal("19.90"),
            expires_at=deadline,
            idempotency_key=key,
        )
        for i, user in enumerate(users)
    ]


@pytest.mark.parametrize("count", [1, 3, 50])
def test_a_batch_reads_back_through_the_orm_as_returned(count):
    product = ProductFactory()
    users = [UserFactory() for _ in range(count)]
    now = timezone.now()
    with transaction.atomic():
        written = insert_order_rows(_lines(product, users), now=now)
    assert len(written) == count == Order.objects.count() == OrderItem.objects.count()
    for entry, user in zip(written, users, strict=True):
        stored = Order.objects.get(pk=entry.order.pk)
        assert stored.user_id == user.pk
        for field in Order._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(entry.order, field.attname), field.name
        [item] = entry.items
        assert OrderItem.objects.get(order=stored).pk == item.pk
        assert (item.product_id, item.unit_price, item.order) == (product.pk, Decimal("19.90"), entry.order)
        assert stored.total == item.unit_price * item.quantity and stored.source == "seckill"
        assert not entry.order._state.adding  # saved rows: a later .save() updates, never inserts a twin


def test_a_refused_row_takes_the_whole_batch_with_the_transaction():
    product = ProductFactory()
    user = UserFactory()
    first = _lines(product, [user], key="sale1:k")
    twin = _lines(product, [user], key="sale1:k")  # same customer, same idempotency key
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_order_rows(first + twin, now=timezone.now())
    assert Order.objects.count() == 0 and OrderItem.objects.count() == 0

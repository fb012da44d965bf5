import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from orders.models import new_order_number
from seckill import cache, services, stock
from seckill.models import SeckillActivity
from shop.tests.factories import ProductFactory


def create_sale(*, stock=10, limit=1, starts_in=-60, duration=3600, product_stock=None, warm=True, **extra):
    """A sale that is live now (starts_in < 0) or later; published and in Redis when `warm`."""
    now = timezone.now()
    product = ProductFactory(price=Decimal("100.00"), stock=stock if product_stock is None else product_stock)
    activity = SeckillActivity.objects.create(
        product=product,
        title=extra.pop("title", "Test sale"),
        price=extra.pop("price", Decimal("60.00")),
        stock_total=stock,
        per_user_limit=limit,
        starts_at=now + timedelta(seconds=starts_in),
        ends_at=now + timedelta(seconds=starts_in + duration),
        **extra,
    )
    if warm:
        services.activity_warm(activity_id=activity.pk)
        activity.refresh_from_db()
    return activity


@pytest.fixture
def make_sale(db):
    return create_sale


def create_customers(count, prefix="buyer"):
    """Customers with API tokens, written in bulk (no password hashing)."""
    User = get_user_model()
    User.objects.bulk_create([User(username=f"{prefix}{i}", password="!") for i in range(count)])
    users = list(User.objects.filter(username__startswith=prefix).order_by("pk"))
    Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return users


@pytest.fixture
def customers(db):
    return create_customers


@pytest.fixture
def many_connections(db):
    """A burst of in-process requests opens one DB connection per thread; make room for it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.max_connections")
        (before,) = cursor.fetchone()
        if before < 1200:
            cursor.execute("SET GLOBAL max_connections = 1200")
    return before


def lua_reserve(activity, *, user_id, quantity=1, reservation_id=None, client_ip=None, key=None):
    """purchase.lua alone, as the purchase path calls it (a fresh order number per call)."""
    return stock.reserve(
        sale=cache.sale_info(activity.pk),
        user_id=user_id,
        quantity=quantity,
        reservation_id=reservation_id or uuid.uuid4().hex,
        number=new_order_number(),
        client_ip=client_ip,
        idempotency_key=key,
    )

import pytest
from django.db import IntegrityError, connection, transaction

from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_raw_update_below_zero_is_refused_by_the_database_and_changes_nothing():
    product = ProductFactory(stock=3)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET stock = stock - 4 WHERE id = %s", [product.pk])
    product.refresh_from_db()
    assert product.stock == 3


def test_orm_save_with_negative_stock_is_refused():
    product = ProductFactory(stock=1)
    product.stock = -1
    with pytest.raises(IntegrityError), transaction.atomic():
        product.save()
    assert Product.objects.get(pk=product.pk).stock == 1


def test_price_must_be_positive():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(price="0.00")
    assert not Product.objects.exists()

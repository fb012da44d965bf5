"""The catalogue's reconciliation check (reconciliation/checks/catalogue.py), on the real MariaDB."""

import pytest
from django.db import connection

from reconciliation.checks.catalogue import negative_stock
from reconciliation.findings import Finding
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def force_stock(product, value):
    """Write a stock the CHECK constraint would refuse, as a bulk import with checks off would."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION check_constraint_checks = 0")
        try:
            cursor.execute("UPDATE shop_product SET stock = %s WHERE id = %s", [value, product.pk])
        finally:
            cursor.execute("SET SESSION check_constraint_checks = 1")


def test_products_below_zero_are_found_and_zero_is_fine():
    below, empty = ProductFactory(slug="below", stock=5), ProductFactory(slug="empty", stock=0)
    force_stock(below, -2)

    [finding] = negative_stock()

    assert finding.kind == "negative_stock" and finding.detail == {
        "product_id": below.pk,
        "product": "below",
        "stock": -2,
    }
    assert negative_stock(product_ids=[empty.pk]) == [] and negative_stock(product_ids=[]) == []


def test_the_check_constraint_really_refuses_it_without_the_session_switch():
    product = ProductFactory(stock=1)
    with pytest.raises(Exception, match="product_stock_not_negative"), connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET stock = -1 WHERE id = %s", [product.pk])


def test_a_finding_is_recognised_by_its_kind_and_key_not_its_wording():
    one = Finding(kind="negative_stock", key=(1, -2), summary="a")
    assert one.fingerprint == Finding(kind="negative_stock", key=(1, -2), summary="b").fingerprint
    assert one.fingerprint != Finding(kind="negative_stock", key=(1, -3), summary="a").fingerprint

import pytest
from django.db.models import F

from core.errors import InsufficientStock
from core.versioning import VersionConflict, update_with_version
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_update_applies_the_change_and_bumps_the_version():
    product = ProductFactory(stock=5)
    row = update_with_version(Product.objects, pk=product.pk, decide=lambda p: {"stock": F("stock") - 2})
    product.refresh_from_db()
    assert (product.stock, product.version) == (3, 2)
    assert row.version == 2 and row.stock == 3  # the expression field reloads on access


def test_a_concurrent_write_makes_the_update_decide_again_on_the_new_row():
    product = ProductFactory(stock=5)
    seen = []

    def decide(row):
        seen.append(row.stock)
        if len(seen) == 1:  # another writer commits between our read and our write
            Product.objects.filter(pk=row.pk).update(stock=1, version=F("version") + 1)
        return {"stock": row.stock - 1}

    update_with_version(Product.objects, pk=product.pk, decide=decide)
    product.refresh_from_db()
    assert seen == [5, 1]
    assert product.stock == 0


def test_refusal_is_final_and_writes_nothing():
    product = ProductFactory(stock=1)

    def decide(row):
        raise InsufficientStock()

    with pytest.raises(InsufficientStock):
        update_with_version(Product.objects, pk=product.pk, decide=decide)
    product.refresh_from_db()
    assert (product.stock, product.version) == (1, 1)


def test_losing_every_race_ends_in_a_clear_conflict_error():
    product = ProductFactory(stock=100)

    def decide(row):
        Product.objects.filter(pk=row.pk).update(version=F("version") + 1)
        return {"stock": row.stock - 1}

    with pytest.raises(VersionConflict) as excinfo:
        update_with_version(Product.objects, pk=product.pk, decide=decide, attempts=3, backoff_s=0)
    assert excinfo.value.code == "conflict" and excinfo.value.status == 409
    product.refresh_from_db()
    assert product.stock == 100 and product.version == 4

"""The checks `make cluster-test` ends with (chaos/multihost/checks.py) hold on a clean bucketed
sale and fail on each planted defect, on the real MariaDB and Redis: a checker that cannot
fail would make that run's "0 violations" mean nothing."""

import pytest
from django.db.models import F

from chaos.multihost import checks
from seckill import writer
from seckill.models import SeckillQuota, SeckillStockBucket
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.test_api import purchase_url
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sold_sale(settings):
    """A 3-bucket sale of 3 units bought by 3 customers through the API, and their answers as
    chaos/multihost/buyers.py records them."""
    settings.SECKILL_ACK_WAIT_SECONDS = 30.0
    settings.SECKILL_WRITER_EAGER = True
    activity = create_sale(stock=3, limit=1, bucket_count=3)
    finals = []
    for n, user in enumerate(create_customers(3)):
        key = f"k-{n}"
        response = token_client(user).post(
            purchase_url(activity), {"quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        body = response.json()
        number = (body.get("order") or {}).get("number")
        finals.append(
            {"user_id": user.pk, "key": key, "status": response.status_code, "code": body.get("code"), "order": number}
        )
    writer.drain(activity.pk)
    return activity, finals


def test_a_clean_sale_passes(sold_sale):
    activity, finals = sold_sale
    assert [f["status"] for f in finals] == [201, 201, 201], finals
    found, stats = checks.database_violations(activity.pk)
    assert found == [] and stats["sold"] == 3
    found, stats = checks.answer_violations(activity.pk, finals)
    assert found == [] and stats["acknowledged"] == 3 and stats["lost_acknowledgements"] == 0


def test_a_201_without_its_order_is_a_lost_acknowledgement(sold_sale):
    activity, finals = sold_sale
    forged = {**finals[0], "order": "SK-NOT-WRITTEN", "key": "k-forged"}
    found, stats = checks.answer_violations(activity.pk, [*finals, forged])
    assert stats["lost_acknowledgements"] == 1
    assert any("lost acknowledgement" in v for v in found), found


def test_one_order_acknowledged_to_two_purchases_is_a_double_sale(sold_sale):
    activity, finals = sold_sale
    found, _ = checks.answer_violations(activity.pk, [*finals, {**finals[1], "key": "k-again"}])
    assert any("acknowledged to two purchases" in v for v in found), found


def test_a_pool_row_off_by_one_and_a_quota_off_by_one_are_found(sold_sale):
    activity, _ = sold_sale
    SeckillStockBucket.objects.filter(activity_id=activity.pk, index=1).update(stock_available=F("stock_available") + 1)
    SeckillQuota.objects.filter(activity_id=activity.pk).update(units_held=F("units_held") - 1)
    found, _ = checks.database_violations(activity.pk)
    assert any(v.startswith("I1: DB pool") for v in found), found
    assert "I3: quota rows disagree with live orders" in found, found


def test_a_server_error_other_than_503_is_a_violation():
    assert checks.server_errors({"web1": {"201": 5, "503 unavailable": 9}}) == []
    assert checks.server_errors({"web1": {"201": 5, "500 server_error": 2}})

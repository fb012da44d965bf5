"""/metrics shows the lock metrics to staff and to a scraper with the token, to nobody else."""

import pytest

from locks import RedisLock

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_see_the_lock_metrics(client, staff):
    with RedisLock("metrics:probe"):
        pass
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'seckill_lock_acquired_total{backend="redis",lock="metrics"}' in body
    assert "seckill_lock_hold_seconds_bucket" in body and "seckill_lock_wait_seconds_count" in body


def test_customers_and_anonymous_visitors_are_refused(client, customer):
    assert client.get("/metrics").status_code == 403
    client.force_login(customer)
    assert client.get("/metrics").status_code == 403


def test_a_scraper_with_the_metrics_token_is_let_in(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200

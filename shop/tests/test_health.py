import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_is_200_when_db_and_redis_answer(client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["db"]["status"] == "ok" and body["redis"]["status"] == "ok"


@pytest.mark.django_db
def test_healthz_is_503_when_redis_is_unreachable(client, settings):
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = caches
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"]["status"] == "down" and response.json()["db"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_is_unreachable(client):
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port
    assert response.status_code == 503
    assert response.json()["db"]["status"] == "down" and response.json()["redis"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_and_metrics_show_what_waits_for_the_order_writer(client, settings, customer, staff):
    from seckill.purchase import purchase
    from seckill.tests.conftest import create_sale

    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5)
    purchase(activity_id=activity.pk, user=customer, quantity=1)
    sales = client.get("/healthz").json()["sales"]
    assert sales["ack"] == "reserved" and sales["writer_lag"][str(activity.pk)]["waiting"] == 1
    assert sales["redis_persistence"] == {"appendonly": "no", "appendfsync": "everysec"}  # the test Redis
    assert sales["acknowledgements_durable"] is False  # reserved acks on a Redis that keeps nothing
    client.force_login(staff)
    scrape = client.get("/metrics").content.decode()
    assert f'seckill_writer_waiting_intents{{sale="{activity.pk}"}} 1.0' in scrape

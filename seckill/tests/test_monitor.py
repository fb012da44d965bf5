"""The live sale monitor (seckill/monitor.py): staff only, figures read from Redis and the DB."""

import pytest
from django.test import Client

from seckill import purchase
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.test_browser import page  # noqa: F401 - the Chromium fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def test_the_sale_list_links_each_sale_to_its_monitor_page(staff_client):
    activity = create_sale(stock=3)
    listing = staff_client.get("/admin/seckill/seckillactivity/").content.decode()
    assert f"/admin/seckill/seckillactivity/{activity.pk}/monitor/" in listing
    response = staff_client.get(f"/admin/seckill/seckillactivity/{activity.pk}/monitor/")
    html = response.content.decode()
    assert response.status_code == 200 and "Live monitor" in html
    assert '<script src="/static/seckill/monitor.js" defer></script>' in html
    assert f'data-url="/admin/seckill/seckillactivity/{activity.pk}/monitor.json"' in html
    assert "<script>" not in html  # no inline script: the CSP allows none
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_snapshot_follows_purchases_and_reads_each_figure(staff_client):
    activity = create_sale(stock=5, limit=2)
    url = f"/admin/seckill/seckillactivity/{activity.pk}/monitor.json"
    before = staff_client.get(url).json()
    assert (before["redis_remaining"], before["db_available"], before["orders"]) == (5, 5, 0)
    buyers = create_customers(2)
    purchase.purchase(activity_id=activity.pk, user=buyers[0], quantity=2)
    purchase.purchase(activity_id=activity.pk, user=buyers[1], quantity=1)

    after = staff_client.get(url)
    data = after.json()
    assert after["Cache-Control"].startswith("max-age=0")
    assert (data["redis_remaining"], data["db_available"], data["orders"], data["live_orders"]) == (2, 2, 2, 2)
    assert data["writer_waiting"] == 0 and data["open_reservation_units"] == 0 and data["refused"] == {}
    assert data["status"] == "live" and data["redis_ok"] is True


def test_customers_and_anonymous_visitors_cannot_see_the_monitor(client, customer):
    activity = create_sale(stock=2)
    for path in (
        f"/admin/seckill/seckillactivity/{activity.pk}/monitor/",
        f"/admin/seckill/seckillactivity/{activity.pk}/monitor.json",
    ):
        assert client.get(path).status_code == 302  # to the admin log-in
    client.force_login(customer)
    for path in (
        f"/admin/seckill/seckillactivity/{activity.pk}/monitor/",
        f"/admin/seckill/seckillactivity/{activity.pk}/monitor.json",
    ):
        assert client.get(path).status_code == 302


@pytest.mark.browser
def test_the_monitor_page_updates_by_itself_while_customers_buy(live_server, page, staff):  # noqa: F811 - fixture
    activity = create_sale(stock=5, limit=1, title="Watched sale")
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/seckill/seckillactivity/{activity.pk}/monitor/")
    page.fill("#id_username", "staffer")
    page.fill("#id_password", "pass-for-tests-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/seckillactivity/{activity.pk}/monitor/")
    left = page.locator('[data-field="redis_remaining"]')
    page.wait_for_function("() => document.querySelector('[data-field=redis_remaining]').textContent === '5'")

    for buyer in create_customers(2):
        purchase.purchase(activity_id=activity.pk, user=buyer, quantity=1)

    page.wait_for_function("() => document.querySelector('[data-field=orders]').textContent === '2'")
    assert left.inner_text() == "3" and page.locator('[data-field="db_available"]').inner_text() == "3"
    assert page.locator("polyline.line-left").get_attribute("points").count(",") >= 2  # the chart is drawn
    assert not [e for e in errors if "Content Security Policy" in e], errors

"""The live sale monitor (seckill/monitor.py): staff only, figures read from Redis and the DB."""

import os

import pytest
from django.test import Client

from seckill import purchase
from seckill.errors import LimitReached
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
    assert data["answers"] == {"ok": 2}
    assert data["latency"]["purchases"] == 2 and 0 < data["latency"]["p50_ms"] <= data["latency"]["p99_ms"]


def test_refusals_decided_in_redis_are_counted_by_code(staff_client):
    from seckill.errors import SoldOut

    activity = create_sale(stock=1, limit=1)
    buyer, late = create_customers(2)
    purchase.purchase(activity_id=activity.pk, user=buyer, quantity=1)
    for user, error in ((buyer, LimitReached), (late, SoldOut)):
        with pytest.raises(error):
            purchase.purchase(activity_id=activity.pk, user=user, quantity=1)
    data = staff_client.get(f"/admin/seckill/seckillactivity/{activity.pk}/monitor.json").json()
    assert data["answers"] == {"ok": 1, "limit_reached": 1, "sold_out": 1}
    assert data["refused"] == {}  # none of them reached the database


def test_the_latency_window_is_the_last_minute_of_readings():
    from seckill import monitor

    def buckets(fast, slow):  # cumulative: `fast` at or under 1 ms, `slow` in (50, 75] ms
        bounds = (*monitor.telemetry.BUCKETS, float("inf"))
        return tuple(fast + (slow if b >= 0.075 else 0) if b >= 0.001 else 0 for b in bounds)

    sale = -1  # no real sale has this id
    assert monitor._latency(sale, buckets(0, 0), now=1000.0)["p50_ms"] is None  # a first reading: no window
    assert monitor._latency(sale, buckets(10, 0), now=1030.0)["p99_ms"] <= 1.0
    at_90 = monitor._latency(sale, buckets(10, 100), now=1090.0)
    assert at_90["window_s"] == 60 and at_90["purchases"] == 100 and at_90["p50_ms"] > 50  # the 10 fast ones left
    assert monitor._latency(sale, buckets(0, 0), now=1095.0)["purchases"] == 0  # counts reset: start again


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

    buyers = create_customers(2)
    for buyer in buyers:
        purchase.purchase(activity_id=activity.pk, user=buyer, quantity=1)

    page.wait_for_function("() => document.querySelector('[data-field=orders]').textContent === '2'")
    assert left.inner_text() == "3" and page.locator('[data-field="db_available"]').inner_text() == "3"
    page.wait_for_function("() => document.querySelector('[data-field=latency]').textContent.includes(' ms / ')")
    page.wait_for_function("() => document.querySelector('[data-code=ok] b')?.textContent === '2'")
    with pytest.raises(LimitReached):  # purchase.lua refuses it: counted without the database
        purchase.purchase(activity_id=activity.pk, user=buyers[0], quantity=1)
    page.wait_for_function("() => document.querySelector('[data-code=limit_reached] b')?.textContent === '1'")
    assert "purchases in the last" in page.locator('[data-field="latency_note"]').inner_text()
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "monitor-1100.png"), full_page=True)
    assert page.locator("polyline.line-left").get_attribute("points").count(",") >= 2  # the chart is drawn
    assert not [e for e in errors if "Content Security Policy" in e], errors

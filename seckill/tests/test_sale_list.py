"""The staff sale list (admin changelist of flash sales, seckill/admin.py, seckill/sale_rows.py):
compact columns, the live ones refreshed by a static script from a staff-only JSON, and a
layout that fits 1280 px and a 390 px phone (checked in Chromium, screenshots to SCREENSHOT_DIR)."""

import os
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.tests.test_browser_pages import DESKTOP, PHONE, browser, tabs  # noqa: F401 - fixtures
from seckill import purchase, sale_rows
from seckill.models import SeckillActivity
from seckill.tests.conftest import create_customers, create_sale

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/admin/seckill/seckillactivity/"
LONG_TITLE = "Midnight rice wine drop: the whole cellar of the 2019 vintage, one per customer"


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def test_the_list_has_compact_columns_and_live_cells(staff_client, customer):
    activity = create_sale(stock=5, title=LONG_TITLE)
    purchase.purchase(activity_id=activity.pk, user=customer, quantity=1)
    response = staff_client.get(LIST)
    html = response.content.decode()
    for column in ("sale", "status_badge", "units", "waiting", "orders_count", "window", "monitor_link"):
        assert f"column-{column}" in html, column
    for gone in ("column-starts_at", "column-ends_at", "column-stock_total", "column-paid_orders"):
        assert gone not in html
    assert f'title="{LONG_TITLE}"' in html and "Midnight rice wine drop: the wh…" in html
    assert f'data-live="left" data-sale="{activity.pk}">4 of 5<' in html
    assert f'data-live="live" data-sale="{activity.pk}">1 live<' in html
    assert f'data-live="paid" data-sale="{activity.pk}">0 paid<' in html
    assert 'id="nav-sidebar"' not in html  # room for the columns at 1280 px
    assert '<script src="/static/seckill/sale_list.js" defer></script>' in html and "<script>" not in html
    assert 'data-url="/admin/seckill/seckillactivity/live.json"' in html


def test_the_live_json_follows_purchases_and_is_for_staff_only(staff_client, client, customer):
    activity = create_sale(stock=3)
    url = f"{LIST}live.json?id={activity.pk}&id=nonsense&id=999999"
    before = staff_client.get(url)
    assert before["Cache-Control"].startswith("max-age=0")
    assert before.json()["sales"][str(activity.pk)]["left"] == "3 of 3"
    purchase.purchase(activity_id=activity.pk, user=customer, quantity=1)
    row = staff_client.get(url).json()["sales"][str(activity.pk)]
    assert row == {
        "status": "live",
        "status_label": "Live",
        "left": "2 of 3",
        "pool": "DB pool 2",
        "waiting": "0",
        "live": "1 live",
        "paid": "0 paid",
    }
    assert client.get(url).status_code == 302  # to the admin log-in
    client.force_login(customer)
    assert client.get(url).status_code == 302


def test_the_window_is_short():
    day = datetime(timezone.now().year, 12, 1, 20, 15, tzinfo=UTC)  # this year's: no year shown
    with timezone.override("UTC"):
        same_day = SeckillActivity(starts_at=day, ends_at=day + timedelta(hours=1))
        assert sale_rows.window(same_day) == ("1 Dec 20:15", "21:15")
        overnight = SeckillActivity(starts_at=day, ends_at=day + timedelta(hours=12))
        assert sale_rows.window(overnight) == ("1 Dec 20:15", "2 Dec 08:15")


def _staff_tab(tabs, staff, viewport):  # noqa: F811 - fixture
    client = Client()
    client.force_login(staff)
    tab = tabs(viewport)
    tab.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": tab.base_url}])
    return tab


@pytest.mark.browser
def test_the_list_fits_1280_and_a_phone_and_refreshes_by_itself(tabs, staff):  # noqa: F811 - fixture
    watched = create_sale(stock=5, limit=1, title=LONG_TITLE)
    create_sale(stock=3, starts_in=3600, title="Tomorrow's espresso grinder", warm=False)
    create_sale(stock=4, starts_in=-7200, duration=3600, title="Yesterday's backpacks", warm=False)
    buyers = create_customers(2)
    for viewport in (DESKTOP, PHONE):
        tab = _staff_tab(tabs, staff, viewport)
        tab.goto(LIST)
        tab.check("admin-sale-list")
        results = tab.page.evaluate(
            "() => { const r = document.querySelector('#changelist .results');"
            " return [r.scrollWidth, r.clientWidth, document.querySelector('.field-sale').offsetHeight]; }"
        )
        if viewport is DESKTOP:
            assert results[0] <= results[1], f"the table is {results[0]} px wide in {results[1]} px"
        assert results[2] < 60, "a sale's cell is more than two lines high"
        tab.goto(f"{LIST}add/")
        tab.check("admin-sale-add")
        assert "Live state" not in tab.page.content()
        tab.goto(f"{LIST}{watched.pk}/change/")
        tab.check("admin-sale-change")

    tab.goto(LIST)
    cell = tab.page.locator(f'[data-live="left"][data-sale="{watched.pk}"]')
    assert cell.inner_text() == "5 of 5"
    purchase.purchase(activity_id=watched.pk, user=buyers[0], quantity=1)
    tab.page.wait_for_function(
        f"() => document.querySelector('[data-live=left][data-sale=\"{watched.pk}\"]').textContent === '4 of 5'",
        timeout=12_000,
    )
    assert tab.page.locator(f'[data-live="live"][data-sale="{watched.pk}"]').inner_text() == "1 live"
    assert "updated" in tab.page.locator("[data-live-updated]").inner_text()
    assert not tab.errors, tab.errors
    if os.environ.get("SCREENSHOT_DIR"):
        tab.page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "admin-sale-list-refreshed-390.png"))

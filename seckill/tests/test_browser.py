"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright.

A customer logs in, waits on the sale page for the server-timed countdown to open the
sale, buys, lands on the order with its payment deadline, and then sees the button
disabled once the sale is sold out.
"""

import os
import shutil

import pytest

from orders.models import Order
from seckill.tests.conftest import create_sale
from seckill.tests.invariants import assert_invariants

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_customer_buys_in_the_browser_and_sees_sold_out(live_server, page, customer, tmp_path):
    activity = create_sale(stock=1, starts_in=8, title="Browser sale")
    page.goto(f"{live_server.url}/accounts/login/?next=/sales/{activity.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/sales/{activity.pk}/")

    buy = page.get_by_test_id("buy")
    assert buy.is_disabled() and "Not started" in buy.inner_text(), (buy.inner_text(), page.content()[:3000])
    assert "Starts in" in page.get_by_test_id("countdown").inner_text()
    # A function, not an expression string: Playwright evaluates strings with eval, which the CSP forbids.
    page.wait_for_function("() => !document.querySelector('[data-testid=buy]').disabled", timeout=15_000)
    page.screenshot(path=str(tmp_path / "sale-live.png"), full_page=True)
    buy.click()

    page.wait_for_url("**/orders/FS-*/")
    order = Order.objects.get()
    assert page.get_by_test_id("order-number").inner_text() == order.number
    assert "Pay by" in page.get_by_test_id("payment-deadline").inner_text()
    assert "You got it!" in page.get_by_test_id("message").inner_text()
    page.screenshot(path=str(tmp_path / "order.png"), full_page=True)

    page.goto(f"{live_server.url}/sales/{activity.pk}/")
    assert page.get_by_test_id("buy").is_disabled()
    assert page.get_by_test_id("buy").inner_text().strip() == "Sold out"
    assert page.get_by_test_id("remaining").inner_text() == "0"
    page.screenshot(path=str(tmp_path / "sold-out.png"), full_page=True)
    assert_invariants(activity, expect_sold=1)
    if os.environ.get("SCREENSHOT_DIR"):
        for name in ("sale-live.png", "order.png", "sold-out.png"):
            shutil.copy(tmp_path / name, os.path.join(os.environ["SCREENSHOT_DIR"], name))


def test_with_reserved_acknowledgements_the_order_page_confirms_then_shows_the_order(
    live_server, page, customer, settings, tmp_path
):
    """SECKILL_ACK=reserved: the buyer lands on the order at once, "Confirming", and the page
    turns into the order by itself once the writer has committed it."""
    from seckill import writer

    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=3, title="Reserved sale")
    page.goto(f"{live_server.url}/accounts/login/?next=/sales/{activity.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/sales/{activity.pk}/")
    page.get_by_test_id("buy").click()
    page.wait_for_url("**/orders/FS-*/")
    assert page.get_by_test_id("order-status").inner_text() == "Confirming"
    number = page.get_by_test_id("order-number").inner_text()
    assert not Order.objects.exists()
    page.screenshot(path=str(tmp_path / "confirming.png"), full_page=True)
    assert writer.drain(activity.pk) == 1  # the writer process's work
    page.wait_for_function(
        "() => document.querySelector('[data-testid=order-status]').textContent.includes('Pending payment')",
        timeout=10_000,
    )  # the page reloads itself every two seconds while confirming
    assert Order.objects.get().number == number
    assert "Pay by" in page.get_by_test_id("payment-deadline").inner_text()
    assert_invariants(activity, expect_sold=1)

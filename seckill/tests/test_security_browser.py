"""In a real browser, under the production Content-Security-Policy, with purchase tokens on.

The customer opens the sale page before tokens are handed out; the page's script
(a static file: the CSP forbids inline scripts) asks for the token when the
countdown reaches the lead time, enables the button at the start, and the purchase
goes through. The browser reports no CSP violation on the way.
"""

import pytest

from orders.models import Order
from seckill.tests.conftest import create_sale
from seckill.tests.invariants import assert_invariants
from seckill.tests.test_browser import page  # noqa: F401 - the Chromium page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sale_page_fetches_its_purchase_token_before_the_start_and_buys(live_server, page, customer, settings):  # noqa: F811
    settings.SECKILL_PURCHASE_TOKEN_REQUIRED = True
    settings.SECKILL_PURCHASE_TOKEN_LEAD_SECONDS = 4
    settings.SECKILL_PURCHASE_TOKEN_MAX_AGE_SECONDS = 60
    violations, token_requests = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: token_requests.append(r.url) if r.url.endswith("/token/") else None)

    activity = create_sale(stock=1, starts_in=10, title="Token sale")
    page.goto(f"{live_server.url}/accounts/login/?next=/sales/{activity.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/sales/{activity.pk}/")

    # Functions, not expression strings: Playwright evaluates strings with eval, which the CSP forbids.
    token_field = page.locator("input[name=purchase_token]")
    assert token_field.input_value() == "", "the page was rendered inside the lead time; start the sale later"
    assert page.get_by_test_id("buy").is_disabled()
    page.wait_for_function("() => document.querySelector('input[name=purchase_token]').value !== ''", timeout=15_000)
    assert token_requests, "the token came from the API, asked for by the page's script"
    page.wait_for_function("() => !document.querySelector('[data-testid=buy]').disabled", timeout=15_000)
    page.get_by_test_id("buy").click()

    page.wait_for_url("**/orders/FS-*/")
    order = Order.objects.get()
    assert page.get_by_test_id("order-number").inner_text() == order.number
    assert not violations, violations
    assert_invariants(activity, expect_sold=1)

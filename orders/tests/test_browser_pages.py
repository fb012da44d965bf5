"""The shop as a customer meets it, in a real browser (Debian's Chromium, headless, Playwright).

One browser for the module; each test opens its own contexts at 390x844 (a phone) and
1280x800. Every page visited is checked for console errors and, on the phone, for
sideways scrolling (document.documentElement.scrollWidth <= innerWidth); screenshots of
both widths go to SCREENSHOT_DIR when it is set. Evaluated code is always a function:
Playwright runs expression strings through eval, which the shop's CSP forbids.
"""

import io
import os
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders.models import Order
from seckill.tests.conftest import create_sale
from seckill.tests.test_browser import CHROMIUM
from shop.tests.factories import ProductFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class Tab:
    """A page with its console errors collected and a check for each page visited."""

    def __init__(self, browser, viewport, name, base_url):
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.viewport, self.name, self.base_url = viewport, name, base_url
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"{self.page.url}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"{self.page.url}: {e}"))

    def goto(self, path):
        self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("networkidle")

    def check(self, shot):
        """No console error so far; no sideways scroll; a screenshot."""
        self.page.wait_for_load_state("networkidle")
        assert not self.errors, self.errors
        scroll, inner = self.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"{shot} is {scroll}px wide in a {inner}px window"
        folder = os.environ.get("SCREENSHOT_DIR")
        if folder:
            self.page.screenshot(path=os.path.join(folder, f"{shot}-{self.viewport['width']}.png"), full_page=True)

    def login(self, username="alice", password="pass-for-tests-1"):
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("form.stack button[type=submit]")

    def close(self):
        self.context.close()


@pytest.fixture
def tabs(browser, live_server):
    opened = []

    def open_tab(viewport=PHONE, name="tab"):
        tab = Tab(browser, viewport, name, live_server.url)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()


def _photo(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(buffer, "PNG")
    return SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def shop(customer):
    keyboard = ProductFactory(
        name="Mechanical keyboard", slug="mechanical-keyboard", price="1129.00", stock=40, description="Hot-swappable."
    )
    keyboard.image = _photo((30, 60, 120))
    keyboard.save()
    ProductFactory(name="Cast-iron pan", slug="cast-iron-pan", price="45.00", stock=80, description="Pre-seasoned.")
    sale = create_sale(stock=5, limit=1, title="Midnight rice wine drop with a long title")
    create_sale(stock=3, starts_in=3600, title="Tomorrow's espresso grinder", warm=False)
    create_sale(stock=4, starts_in=-7200, duration=3600, title="Yesterday's backpacks", warm=False)
    return {"keyboard": keyboard, "sale": sale}


def test_every_page_fits_a_phone_and_has_no_console_errors(tabs, shop):
    for viewport in (PHONE, DESKTOP):
        tab = tabs(viewport)
        tab.goto("/")
        tab.check("home")
        tab.goto("/sales/")
        tab.check("flash-sales")
        tab.goto(f"/sales/{shop['sale'].pk}/")
        tab.check("sale-anonymous")
        tab.goto("/products/")
        tab.check("products")
        tab.goto("/products/mechanical-keyboard/")
        tab.check("product")
        tab.page.fill("#qty", "2")
        tab.page.click("form.buy-form button")
        tab.page.wait_for_url("**/cart/")
        tab.check("cart")
        tab.goto("/accounts/login/?next=/checkout/")
        tab.check("login")
        tab.login()
        tab.page.wait_for_url("**/checkout/")
        tab.check("checkout")
        tab.page.click("button[data-once]")
        tab.page.wait_for_url("**/orders/FS-*/")
        tab.check("order")
        tab.goto("/orders/")
        tab.check("my-orders")
        tab.goto("/account/")
        tab.check("account")
        tab.page.get_by_test_id("logout").click()
        tab.page.wait_for_url(tab.base_url + "/")
        assert "You have logged out" in tab.page.get_by_test_id("message").inner_text()
    assert Order.objects.count() == 2  # one per width, each with its confirmation e-mail
    assert len([m for m in mail.outbox if "Your Flash Shop order" in m.subject]) == 2


def test_session_ended_purchase_leads_back_to_the_sale_and_then_the_limit(tabs, shop):
    sale = shop["sale"]
    tab = tabs(PHONE)
    tab.goto(f"/accounts/login/?next=/sales/{sale.pk}/")
    tab.login()
    tab.page.wait_for_url(f"**/sales/{sale.pk}/")
    tab.page.wait_for_function("() => !document.querySelector('[data-testid=buy]').disabled")
    tab.context.clear_cookies(name="sessionid")  # the session ends while the page is open
    tab.page.get_by_test_id("buy").click()
    tab.page.wait_for_url("**/accounts/login/**")
    assert "Your session has ended" in tab.page.get_by_test_id("message").inner_text()
    tab.check("login-session-ended")
    tab.login()
    tab.page.wait_for_url(f"**/sales/{sale.pk}/")
    assert not Order.objects.exists()
    tab.page.wait_for_function("() => !document.querySelector('[data-testid=buy]').disabled")
    tab.page.get_by_test_id("buy").click()
    tab.page.wait_for_url("**/orders/FS-*/")
    order = Order.objects.get()
    tab.goto(f"/sales/{sale.pk}/")
    tab.page.wait_for_timeout(600)  # a few ticks of the page's script
    buy = tab.page.get_by_test_id("buy")
    assert buy.is_disabled() and buy.inner_text().strip() == "Limit reached"
    assert order.number in tab.page.get_by_test_id("holding").inner_text()
    tab.check("sale-limit-reached")
    desktop = tabs(DESKTOP)
    desktop.goto(f"/accounts/login/?next=/sales/{sale.pk}/")
    desktop.login()
    desktop.page.wait_for_url(f"**/sales/{sale.pk}/")
    desktop.page.wait_for_timeout(600)
    assert desktop.page.get_by_test_id("buy").is_disabled()
    desktop.check("sale-limit-reached")
    assert Order.objects.count() == 1


def test_password_reset_end_to_end(tabs, shop, customer):
    tab = tabs(PHONE)
    tab.goto("/accounts/login/")
    tab.page.get_by_test_id("forgot-password").click()
    tab.page.wait_for_url("**/password/reset/")
    tab.check("password-reset")
    tab.page.fill("#id_email", customer.email)
    tab.page.click("form.stack button")
    tab.page.wait_for_url("**/password/reset/sent/")
    [message] = mail.outbox
    link = re.search(r"https?://\S+/accounts/password/reset/\S+/", message.body).group(0)
    tab.page.goto(link)
    tab.page.fill("#id_new_password1", "Brand-new-pass-9")
    tab.page.fill("#id_new_password2", "Brand-new-pass-9")
    tab.check("password-new")
    tab.page.click("form.stack button")
    tab.page.wait_for_url("**/password/reset/done/")
    tab.goto("/accounts/login/")
    tab.login(password="Brand-new-pass-9")
    tab.page.wait_for_url(tab.base_url + "/")
    assert tab.page.get_by_test_id("account-link").is_visible()
    customer.refresh_from_db()
    assert customer.check_password("Brand-new-pass-9")
    tab.check("home-logged-in")


def test_search_from_the_header(tabs, shop):
    tab = tabs(PHONE)
    tab.goto("/")
    tab.page.get_by_test_id("search-input").fill("keyboard")
    tab.page.get_by_test_id("search-input").press("Enter")
    tab.page.wait_for_url("**/products/?q=keyboard")
    cards = tab.page.get_by_test_id("product-card")
    assert cards.count() == 1 and "Mechanical keyboard" in cards.first.inner_text()
    assert "€1,129.00" in cards.first.inner_text()
    tab.page.wait_for_function("() => document.querySelector('img.photo').naturalWidth > 0")  # the image loaded
    tab.check("search")
    tab.goto("/products/?q=submarine")
    assert tab.page.get_by_test_id("no-results").is_visible()

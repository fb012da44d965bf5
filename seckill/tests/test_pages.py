import pytest
from django.test import Client

from orders.models import Order
from seckill import stock
from seckill.tests.conftest import create_sale
from seckill.tests.invariants import assert_invariants

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in(customer):
    client = Client()
    client.force_login(customer)
    return client


def test_home_lists_live_and_upcoming_sales_but_not_ended_ones(client):
    create_sale(stock=5, title="Live deal")
    create_sale(stock=5, starts_in=600, title="Coming deal", warm=False)
    create_sale(stock=5, starts_in=-7200, duration=3600, title="Old deal", warm=False)
    html = client.get("/").content.decode()
    assert "Live deal" in html and "Coming deal" in html and "Old deal" not in html
    assert "Buy now" in html and "Products" in html


def test_sale_page_shows_price_stock_and_an_enabled_button_when_live(logged_in):
    activity = create_sale(stock=5)
    html = logged_in.get(f"/sales/{activity.pk}/").content.decode()
    assert "€60.00" in html and "€100.00" in html and 'data-testid="remaining">5<' in html
    assert 'data-testid="buy"' in html and 'data-testid="buy" disabled' not in html
    assert "data-server-ms=" in html


@pytest.mark.parametrize("setup,label", [({"starts_in": 600}, "Not started yet"), ({"stock": 1}, "Sold out")])
def test_buy_button_is_disabled_before_the_start_and_after_sell_out(logged_in, other_customer, setup, label):
    activity = create_sale(**{"stock": 5, **setup})
    if label == "Sold out":
        Client().force_login(other_customer)
        from seckill.purchase import purchase

        purchase(activity_id=activity.pk, user=other_customer, quantity=1)
    html = logged_in.get(f"/sales/{activity.pk}/").content.decode()
    assert 'data-testid="buy" disabled' in html and label in html


def test_buying_from_the_page_leads_to_the_order_with_its_deadline(logged_in):
    activity = create_sale(stock=5)
    page = logged_in.get(f"/sales/{activity.pk}/")
    key = page.context["idempotency_key"]
    response = logged_in.post(f"/sales/{activity.pk}/buy/", {"idempotency_key": key}, follow=True)
    order = Order.objects.get()
    assert response.redirect_chain[-1][0] == f"/orders/{order.number}/"
    html = response.content.decode()
    assert "You got it!" in html and 'data-testid="payment-deadline"' in html and "flash sale" in html
    again = logged_in.post(f"/sales/{activity.pk}/buy/", {"idempotency_key": key}, follow=True)
    assert again.redirect_chain[-1][0] == f"/orders/{order.number}/"  # a double submit changes nothing
    assert_invariants(activity, expect_sold=1)
    listing = logged_in.get("/orders/").content.decode()
    assert order.number in listing and order.expires_at.strftime("%b %-d") in listing


def test_buying_twice_shows_the_limit_message(logged_in):
    activity = create_sale(stock=5)
    logged_in.post(f"/sales/{activity.pk}/buy/")
    response = logged_in.post(f"/sales/{activity.pk}/buy/", follow=True)
    assert "You already hold 1 of the 1 allowed" in response.content.decode()
    assert_invariants(activity, expect_sold=1)


def test_buy_requires_login_and_csrf(customer):
    activity = create_sale(stock=5)
    anonymous = Client().post(f"/sales/{activity.pk}/buy/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)
    assert strict.post(f"/sales/{activity.pk}/buy/").status_code == 403
    assert stock.remaining(activity.pk) == 5 and not Order.objects.exists()


def test_unknown_sale_page_is_404(client):
    assert client.get("/sales/999999/").status_code == 404

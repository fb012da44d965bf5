"""No page answers a bare 405; the account page; cancel asks first; closed orders say why."""

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order
from orders.services import CartLine, order_cancel, order_create, order_expire
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(customer):
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def order(customer, product):
    return order_create(user=customer, lines=[CartLine(product.pk, 2)])[0]


def test_get_on_pay_goes_to_the_order_page_with_a_note_and_pays_nothing(logged_in, order):
    response = logged_in.get(f"/orders/{order.number}/pay/", follow=True)
    assert response.redirect_chain[-1][0] == f"/orders/{order.number}/"
    assert "Nothing was paid" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_get_on_cart_add_goes_to_the_product_and_adds_nothing(client, product):
    response = client.get(f"/cart/add/{product.pk}/", follow=True)
    assert response.redirect_chain[-1][0] == "/products/rice-wine/" and response.context["cart_count"] == 0


def test_other_methods_on_pages_get_the_shop_405_page(logged_in, order):
    for method, url in [("put", f"/orders/{order.number}/pay/"), ("post", "/orders/"), ("delete", "/cart/")]:
        response = getattr(logged_in, method)(url)
        assert response.status_code == 405, url
        assert "That link only works from its button" in response.content.decode()
        assert response["Allow"]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_api_405_stays_json(customer_api):
    response = customer_api.put("/api/products/")
    assert response.status_code == 405 and response.json()["code"]


def test_cancel_asks_to_confirm_first(logged_in, order, product):
    page = logged_in.get(f"/orders/{order.number}/cancel/")
    assert page.status_code == 200 and "Yes, cancel the order" in page.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT
    assert Product.objects.get(pk=product.pk).stock == 8
    logged_in.post(f"/orders/{order.number}/cancel/")
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert Product.objects.get(pk=product.pk).stock == 10
    again = logged_in.get(f"/orders/{order.number}/cancel/", follow=True)
    assert "cannot be cancelled" in again.content.decode()


def test_expired_and_cancelled_orders_say_when_and_why(logged_in, customer, order, product):
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now())
    order_expire(order=order)
    html = logged_in.get(f"/orders/{order.number}/").content.decode()
    assert "This order expired on" in html and "not paid by" in html
    other = order_create(user=customer, lines=[CartLine(product.pk, 1)])[0]
    order_cancel(order=other)
    assert "You cancelled this order on" in logged_in.get(f"/orders/{other.number}/").content.decode()


def test_amounts_have_thousands_separators(logged_in, customer):
    big = ProductFactory(slug="sofa", name="Sofa", price="3225.00", stock=5)
    order = order_create(user=customer, lines=[CartLine(big.pk, 2)])[0]
    html = logged_in.get(f"/orders/{order.number}/").content.decode()
    assert "€6,450.00" in html and "€6450.00" not in html


def test_account_page_saves_details_and_refuses_a_bad_email(logged_in, customer, order):
    page = logged_in.get("/account/")
    assert page.status_code == 200 and order.number in page.content.decode()
    bad = logged_in.post("/account/", {"first_name": "Al", "last_name": "Ice", "email": "not-an-address"})
    assert bad.status_code == 400 and "Enter a valid email address." in bad.content.decode()
    customer.refresh_from_db()
    assert customer.first_name == "" and customer.email == "alice@example.com"
    ok = logged_in.post(
        "/account/", {"first_name": "Al", "last_name": "Ice", "email": "al@example.com", "is_staff": "on"}, follow=True
    )
    assert "Your details were saved." in ok.content.decode()
    customer.refresh_from_db()
    assert (customer.first_name, customer.email, customer.is_staff) == ("Al", "al@example.com", False)


def test_account_page_needs_login(client):
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

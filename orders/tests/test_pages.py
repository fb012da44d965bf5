import pytest
from django.test import Client

from orders.models import Order
from orders.services import CartLine, order_create
from shop.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(customer):
    client = Client()
    client.force_login(customer)
    return client


def stock(product):
    return Product.objects.get(pk=product.pk).stock


def test_add_to_cart_then_checkout_places_the_order(logged_in, product):
    response = logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 2}, follow=True)
    assert "Added 2 x Rice wine" in response.content.decode() and response.context["cart_count"] == 2
    page = logged_in.get("/checkout/")
    key = page.context["idempotency_key"]
    response = logged_in.post("/checkout/", {"idempotency_key": key}, follow=True)
    order = Order.objects.get()
    assert response.redirect_chain[-1][0] == f"/orders/{order.number}/"
    html = response.content.decode()
    assert f"Order {order.number} placed" in html and "Pay by" in html
    assert stock(product) == 8 and response.context["cart_count"] == 0


def test_double_submitted_checkout_creates_one_order(logged_in, product):
    logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    key = logged_in.get("/checkout/").context["idempotency_key"]
    logged_in.post("/checkout/", {"idempotency_key": key})
    logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 1})  # the second tab's cart
    response = logged_in.post("/checkout/", {"idempotency_key": key}, follow=True)
    assert "was already placed" in response.content.decode()
    assert Order.objects.count() == 1 and stock(product) == 9


def test_checkout_after_the_stock_fell_shows_an_error_and_keeps_the_cart(logged_in, product):
    logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 8})
    Product.objects.filter(pk=product.pk).update(stock=5)  # others bought meanwhile
    response = logged_in.post("/checkout/", {"idempotency_key": "k1"}, follow=True)
    assert "Only 5 of Rice wine left." in response.content.decode()
    assert response.context["cart_count"] == 8 and not Order.objects.exists() and stock(product) == 5


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "1000000000", "11"])
def test_bad_cart_quantity_shows_a_message_and_changes_nothing(logged_in, product, quantity):
    response = logged_in.post(f"/cart/add/{product.pk}/", {"quantity": quantity}, follow=True)
    assert "Choose a quantity between 1 and 10." in response.content.decode()  # 10 in stock
    assert response.context["cart_count"] == 0


def test_cart_update_to_zero_removes_the_line(logged_in, product):
    logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 2})
    response = logged_in.post(f"/cart/update/{product.pk}/", {"quantity": 0}, follow=True)
    assert "Removed from your cart." in response.content.decode() and response.context["cart_count"] == 0


def test_checkout_requires_login(client, product):
    client.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    response = client.get("/checkout/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_forms_without_csrf_token_are_refused_and_change_nothing(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    for url in [
        f"/cart/add/{product.pk}/",
        "/checkout/",
        f"/orders/{order.number}/pay/",
        f"/orders/{order.number}/cancel/",
    ]:
        response = client.post(url, {"quantity": 1})
        assert response.status_code == 403, url
        assert "This form has expired" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT and stock(product) == 9


def test_order_pages_pay_and_cancel_buttons(logged_in, customer, product):
    to_pay, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    to_cancel, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    listing = logged_in.get("/orders/").content.decode()
    assert to_pay.number in listing and to_cancel.number in listing
    response = logged_in.post(f"/orders/{to_pay.number}/pay/", follow=True)
    assert f"Payment received for order {to_pay.number}" in response.content.decode()
    response = logged_in.post(f"/orders/{to_cancel.number}/cancel/", follow=True)
    assert f"Order {to_cancel.number} cancelled" in response.content.decode()
    response = logged_in.post(f"/orders/{to_cancel.number}/pay/", follow=True)
    assert "is cancelled and cannot be paid" in response.content.decode()
    assert stock(product) == 9


def test_another_customers_order_page_is_404(logged_in, other_customer, product):
    theirs, _ = order_create(user=other_customer, lines=[CartLine(product.pk, 1)])
    assert logged_in.get(f"/orders/{theirs.number}/").status_code == 404
    assert logged_in.post(f"/orders/{theirs.number}/cancel/").status_code == 404
    assert Order.objects.get(pk=theirs.pk).status == Order.Status.PENDING_PAYMENT

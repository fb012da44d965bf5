"""Mass assignment: fields that belong to the shop, sent to every write endpoint.

JSON endpoints that take a body refuse any field they do not declare with 400
`{code: invalid, errors: {field: ...}}` (core/api_errors.StrictInputSerializer), and
the schema says so (`additionalProperties: false`). Endpoints without a body (pay,
cancel) and the web forms ignore whatever else is posted: they read only their own
named inputs. Either way nothing changes: no order, no stock, no status, no price.
"""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order
from orders.services import CartLine, order_create
from seckill import stock
from seckill.models import SeckillActivity, SeckillOrder
from seckill.tests.conftest import create_sale
from seckill.tests.invariants import assert_invariants
from shop.models import Product
from shop.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# The fields an attacker would like to set, with values that would help them.
FORBIDDEN = {
    "price": "0.01",
    "unit_price": "0.01",
    "total": "0.00",
    "status": "paid",
    "user": 1,
    "user_id": 1,
    "version": 999,
    "stock": 100000,
    "stock_available": 100000,
    "per_user_limit": 1000,
    "fencing_token": 2**62,
    "reservation_id": "0" * 32,
    "number": "FS-0000-0000-0001",
    "paid_at": "2030-01-01T00:00:00Z",
    "is_staff": True,
}


# --- JSON endpoints with a body: refused ------------------------------------------------------


@pytest.mark.parametrize("field", sorted(FORBIDDEN))
def test_checkout_api_refuses_each_field(customer_api, product, field):
    payload = {"items": [{"product": product.slug, "quantity": 1}], field: FORBIDDEN[field]}
    response = customer_api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert not Order.objects.exists() and Product.objects.get(pk=product.pk).stock == 10


@pytest.mark.parametrize("field", ["price", "unit_price", "total", "stock", "user"])
def test_checkout_api_refuses_each_field_inside_an_item(customer_api, product, field):
    payload = {"items": [{"product": product.slug, "quantity": 1, field: FORBIDDEN[field]}]}
    response = customer_api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert not Order.objects.exists() and Product.objects.get(pk=product.pk).stock == 10


@pytest.mark.parametrize("field", sorted(FORBIDDEN))
def test_purchase_api_refuses_each_field(customer_api, field):
    activity = create_sale(stock=5)
    response = customer_api.post(
        f"/api/seckill/activities/{activity.pk}/purchase/", {"quantity": 1, field: FORBIDDEN[field]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert stock.remaining(activity.pk) == 5 and not Order.objects.exists()
    assert SeckillActivity.objects.get(pk=activity.pk).stock_available == 5
    assert_invariants(activity, expect_sold=0)


@pytest.mark.parametrize("field", ["is_staff", "is_superuser", "user", "user_id"])
def test_token_api_refuses_each_field(field):
    user = UserFactory(username="carol", password="right-password-1")
    payload = {"username": "carol", "password": "right-password-1", field: 1}
    response = APIClient().post("/api/auth/token/", payload, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    user.refresh_from_db()
    assert not Token.objects.exists() and not user.is_staff and not user.is_superuser


# --- JSON endpoints without a body: ignored ---------------------------------------------------


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_pay_and_cancel_ignore_every_field(customer_api, customer, other_customer, product, action):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    response = customer_api.post(f"/api/orders/{order.number}/{action}/", FORBIDDEN | {"status": "paid"}, format="json")
    assert response.status_code == 200
    row = Order.objects.get(pk=order.pk)
    assert row.status == ("paid" if action == "pay" else "cancelled")
    assert (row.user_id, row.total, row.number, row.version) == (customer.pk, Decimal("200.00"), order.number, 2)
    assert row.items.get().unit_price == Decimal("100.00")
    assert Product.objects.get(pk=product.pk).stock == (8 if action == "pay" else 10)


# --- web forms: ignored ------------------------------------------------------------------------


@pytest.fixture
def browser(customer):
    client = Client()
    client.force_login(customer)
    return client


def test_cart_and_checkout_forms_ignore_every_field(browser, customer, product):
    browser.post(f"/cart/add/{product.pk}/", {"quantity": 2} | FORBIDDEN)
    key = browser.get("/checkout/").context["idempotency_key"]
    browser.post("/checkout/", {"idempotency_key": key} | FORBIDDEN)
    order = Order.objects.get()
    assert (order.user, order.status, order.total) == (customer, "pending_payment", Decimal("200.00"))
    assert order.items.get().unit_price == Decimal("100.00") and order.number != FORBIDDEN["number"]
    assert Product.objects.get(pk=product.pk).stock == 8


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_order_pay_and_cancel_forms_ignore_every_field(browser, customer, product, action):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    browser.post(f"/orders/{order.number}/{action}/", FORBIDDEN | {"status": "expired"})
    row = Order.objects.get(pk=order.pk)
    assert row.status == ("paid" if action == "pay" else "cancelled") and row.total == Decimal("100.00")
    assert row.user == customer and row.version == 2


def test_sale_buy_form_ignores_quantity_price_and_user(browser, customer, other_customer):
    activity = create_sale(stock=5, limit=3)
    browser.post(f"/sales/{activity.pk}/buy/", {"quantity": 3} | FORBIDDEN | {"user": other_customer.pk})
    link = SeckillOrder.objects.get()
    assert (link.user, link.quantity) == (customer, 1)
    assert (link.order.total, link.order.user) == (Decimal("60.00"), customer)
    assert link.reservation_id != FORBIDDEN["reservation_id"]
    assert_invariants(activity, expect_sold=1)


def test_signup_form_ignores_staff_and_superuser_flags():
    Client().post(
        "/accounts/signup/",
        {
            "username": "mallory",
            "email": "m@example.com",
            "password1": "a-long-pass-123",
            "password2": "a-long-pass-123",
            "is_staff": "on",
            "is_superuser": "on",
            "is_active": "on",
        },
    )
    user = get_user_model().objects.get(username="mallory")
    assert not user.is_staff and not user.is_superuser

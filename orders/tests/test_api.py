import pytest

from orders.models import Order
from orders.services import CartLine, order_create
from shop.models import Product

pytestmark = pytest.mark.django_db


def stock(product):
    return Product.objects.get(pk=product.pk).stock


def buy(client, product, quantity=1, **extra):
    return client.post(
        "/api/orders/", {"items": [{"product": product.slug, "quantity": quantity}]}, format="json", **extra
    )


def test_create_order_201_takes_stock_and_returns_the_order(customer_api, customer, product):
    response = buy(customer_api, product, 3)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending_payment" and body["total"] == "300.00"
    assert body["items"] == [
        {"product": "rice-wine", "product_name": "Rice wine", "quantity": 3, "unit_price": "100.00"}
    ]
    assert response["Location"] == f"/orders/{body['number']}/"
    assert stock(product) == 7 and Order.objects.get(number=body["number"]).user == customer


@pytest.mark.parametrize(
    "quantity",
    [0, -1, 10**9, "abc", None, 1.5, [], {"x": 1}],
    ids=["zero", "neg", "huge", "text", "null", "float", "list", "obj"],
)
def test_bad_quantity_is_a_400_with_code_and_detail_and_changes_nothing(customer_api, product, quantity):
    response = buy(customer_api, product, quantity)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["detail"].startswith("items[0].quantity")
    assert stock(product) == 10 and not Order.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [{}, {"items": []}, {"items": "x"}, {"items": [{"product": "rice-wine"}]}, [], "junk"],
    ids=["empty", "no-items", "items-text", "no-quantity", "list", "string"],
)
def test_malformed_bodies_are_400(customer_api, product, payload):
    response = customer_api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400 and response.json()["code"] in {"invalid", "parse_error"}
    assert stock(product) == 10 and not Order.objects.exists()


def test_non_json_body_is_a_415(customer_api, product):
    response = customer_api.post("/api/orders/", "items=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


def test_unknown_product_is_404(customer_api, product):
    response = customer_api.post("/api/orders/", {"items": [{"product": "nope", "quantity": 1}]}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert "nope" in response.json()["detail"] and not Order.objects.exists()


def test_insufficient_stock_is_409_not_500(customer_api, product):
    response = buy(customer_api, product, 11)
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock" and response.json()["available"] == 10
    assert stock(product) == 10


@pytest.mark.parametrize(
    "field,value",
    [("price", "0.01"), ("status", "paid"), ("user", 999), ("version", 99), ("total", "0.00"), ("number", "FS-1")],
)
def test_mass_assigned_fields_are_refused_and_change_nothing(customer_api, product, field, value):
    payload = {"items": [{"product": product.slug, "quantity": 1}], field: value}
    response = customer_api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert stock(product) == 10 and not Order.objects.exists()


def test_mass_assigned_unit_price_inside_an_item_is_refused(customer_api, product):
    payload = {"items": [{"product": product.slug, "quantity": 1, "unit_price": "0.01"}]}
    response = customer_api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400 and not Order.objects.exists()


def test_anonymous_requests_get_401_json(api, product, customer):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    for method, url in [
        ("get", "/api/orders/"),
        ("post", "/api/orders/"),
        ("get", f"/api/orders/{order.number}/"),
        ("post", f"/api/orders/{order.number}/pay/"),
        ("post", f"/api/orders/{order.number}/cancel/"),
    ]:
        response = getattr(api, method)(url, {}, format="json")
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_bad_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = api.get("/api/orders/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_a_customer_sees_only_their_own_orders(customer_api, other_api, customer, other_customer, product):
    mine, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    theirs, _ = order_create(user=other_customer, lines=[CartLine(product.pk, 1)])
    listed = [o["number"] for o in customer_api.get("/api/orders/").json()["results"]]
    assert listed == [mine.number]
    assert customer_api.get(f"/api/orders/{mine.number}/").status_code == 200
    for suffix in ["", "pay/", "cancel/"]:
        call = customer_api.get if not suffix else customer_api.post
        response = call(f"/api/orders/{theirs.number}/{suffix}")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert Order.objects.get(pk=theirs.pk).status == Order.Status.PENDING_PAYMENT


def test_pay_then_cancel_is_refused_with_409(customer_api, customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    paid = customer_api.post(f"/api/orders/{order.number}/pay/")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    refused = customer_api.post(f"/api/orders/{order.number}/cancel/")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    assert stock(product) == 8


def test_cancel_returns_stock_and_pay_after_cancel_is_409(customer_api, customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    cancelled = customer_api.post(f"/api/orders/{order.number}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert stock(product) == 10
    refused = customer_api.post(f"/api/orders/{order.number}/pay/")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"


def test_idempotency_key_replay_returns_the_same_order_with_200(customer_api, product):
    first = buy(customer_api, product, 2, HTTP_IDEMPOTENCY_KEY="retry-1")
    again = buy(customer_api, product, 2, HTTP_IDEMPOTENCY_KEY="retry-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["number"] == again.json()["number"]
    assert stock(product) == 8 and Order.objects.count() == 1


def test_malformed_idempotency_key_is_400(customer_api, product):
    response = buy(customer_api, product, 1, HTTP_IDEMPOTENCY_KEY="x" * 65)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert stock(product) == 10


def test_session_authenticated_api_post_without_csrf_is_refused(customer, product):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(customer)
    response = buy(client, product, 1)
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert stock(product) == 10

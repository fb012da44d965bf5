"""The flash-sale API (README.md "API in one glance"), including bursts of parallel HTTP requests."""

from collections import Counter

import pytest
from rest_framework.test import APIClient

from orders.models import Order
from seckill import cache, stock, writer
from seckill.models import SeckillOrder
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants
from shop.tests.concurrency import run_concurrently
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


def purchase_url(activity):
    return f"/api/seckill/activities/{activity.pk}/purchase/"


def test_activity_list_and_detail_follow_the_contract(api):
    live = create_sale(stock=5, title="Live now")
    create_sale(stock=3, starts_in=600, title="Later", warm=False)
    listed = api.get("/api/seckill/activities/").json()
    assert [a["title"] for a in listed] == ["Live now", "Later"]
    detail = api.get(f"/api/seckill/activities/{live.pk}/").json()
    assert set(detail) >= {
        "id", "title", "product", "price", "stock_total", "stock_remaining", "per_user_limit",
        "starts_at", "ends_at", "status", "server_time",
    }  # fmt: skip
    assert (detail["status"], detail["stock_remaining"], detail["stock_total"]) == ("live", 5, 5)
    assert listed[1]["status"] == "upcoming"


def test_unknown_activity_is_404_json(api, customer_api):
    assert api.get("/api/seckill/activities/999999/").json()["code"] == "not_found"
    response = customer_api.post("/api/seckill/activities/999999/purchase/", {"quantity": 1}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_purchase_201_returns_the_order(customer_api, customer):
    activity = create_sale(stock=5)
    response = customer_api.post(purchase_url(activity), {"quantity": 1}, format="json")
    assert response.status_code == 201
    order = response.json()["order"]
    assert order["source"] == "seckill" and order["total"] == "60.00" and order["expires_at"]
    assert Order.objects.get(number=order["number"]).user == customer
    assert_invariants(activity, expect_sold=1)


def test_empty_body_means_quantity_one(customer_api):
    activity = create_sale(stock=5)
    assert customer_api.post(purchase_url(activity), format="json").status_code == 201


@pytest.mark.parametrize(
    "payload",
    [{"quantity": 0}, {"quantity": -1}, {"quantity": 10**9}, {"quantity": "abc"}, {"quantity": None},
     {"quantity": 1, "price": "0.01"}, {"quantity": 1, "user": 1}, {"quantity": 1, "status": "paid"}],
    ids=["zero", "negative", "huge", "text", "null", "price", "user", "status"],
)  # fmt: skip
def test_bad_input_is_400_and_changes_nothing(customer_api, payload):
    activity = create_sale(stock=5)
    response = customer_api.post(purchase_url(activity), payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["detail"]
    assert stock.remaining(activity.pk) == 5 and not Order.objects.exists()


@pytest.mark.parametrize(
    "setup,status,code",
    [
        ({"starts_in": 600}, 409, "not_started"),
        ({"starts_in": -7200, "duration": 3600, "warm": False}, 409, "ended"),
        ({"starts_in": 600, "is_enabled": False, "warm": False}, 404, "not_found"),
    ],
    ids=["not-started", "ended", "disabled"],
)
def test_sale_state_answers(customer_api, setup, status, code):
    activity = create_sale(stock=5, **setup)
    response = customer_api.post(purchase_url(activity), {"quantity": 1}, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not Order.objects.exists()


def test_sold_out_and_limit_reached_are_409(customer_api, other_api):
    activity = create_sale(stock=1)
    assert customer_api.post(purchase_url(activity), format="json").status_code == 201
    again = customer_api.post(purchase_url(activity), format="json")
    assert (again.status_code, again.json()["code"]) == (409, "limit_reached")
    other = other_api.post(purchase_url(activity), format="json")
    assert (other.status_code, other.json()["code"]) == (409, "sold_out")
    assert_invariants(activity, expect_sold=1)


def test_unauthenticated_purchase_is_401(api):
    activity = create_sale(stock=5)
    response = api.post(purchase_url(activity), {"quantity": 1}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert stock.remaining(activity.pk) == 5


def test_session_purchase_without_csrf_is_refused(customer):
    activity = create_sale(stock=5)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(purchase_url(activity), {"quantity": 1}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert stock.remaining(activity.pk) == 5


def test_rate_limit_is_429_rate_limited(settings, customer_api):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 2
    activity = create_sale(stock=5, limit=5)
    codes = [customer_api.post(purchase_url(activity), format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    response = customer_api.post(purchase_url(activity), format="json")
    assert response.json()["code"] == "rate_limited"
    assert_invariants(activity, expect_sold=2)


def test_idempotency_key_header_replays_the_same_answer(customer_api):
    activity = create_sale(stock=5, limit=2)
    first = customer_api.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    again = customer_api.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["order"]["number"] == again.json()["order"]["number"]
    assert again["Idempotent-Replayed"] == "true"
    assert_invariants(activity, expect_sold=1)


@pytest.mark.parametrize("bucket_count", [1, 3])
def test_a_retry_under_its_key_after_the_sell_out_gets_its_order_not_sold_out(customer_api, other_api, bucket_count):
    """The first answer was lost (a timeout, a 503 after the script ran) and the sale sold out
    meanwhile: the retry must still get the customer's order, not the process's sold-out flag."""
    activity = create_sale(stock=1, limit=1, bucket_count=bucket_count)
    first = customer_api.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="tap-9")
    assert first.status_code == 201, first.json()
    assert other_api.post(purchase_url(activity), format="json").json()["code"] == "sold_out"
    assert cache.is_sold_out(activity.pk)
    again = customer_api.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="tap-9")
    assert again.status_code == 201, again.json()
    assert again.json()["order"]["number"] == first.json()["order"]["number"]
    assert again["Idempotent-Replayed"] == "true"
    # A new key, or none, still gets the refusal; nothing more is sold.
    assert (
        other_api.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="o-1").json()["code"] == "sold_out"
    )
    assert other_api.post(purchase_url(activity), format="json").json()["code"] == "sold_out"
    writer.drain(activity.pk)
    assert SeckillOrder.objects.filter(activity=activity).count() == 1
    assert Order.objects.filter(user=first.wsgi_request.user).count() == 1


def test_reserved_ack_202_confirming_then_the_order(settings, customer_api, other_api):
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5)
    response = customer_api.post(purchase_url(activity), format="json")
    assert response.status_code == 202
    body = response.json()
    number = body["order"]["number"]
    assert body["order"]["status"] == "confirming" and body["status_url"] == f"/api/orders/{number}/"
    assert customer_api.get(body["status_url"]).json()["status"] == "confirming"
    assert other_api.get(body["status_url"]).status_code == 404  # not theirs
    assert APIClient().get(body["status_url"]).status_code == 401
    writer.drain(activity.pk)
    shown = customer_api.get(body["status_url"]).json()
    assert shown["status"] == "pending_payment" and shown["number"] == number
    assert_invariants(activity, expect_sold=1)


def test_the_same_idempotency_key_twenty_times_in_parallel_is_one_order_and_one_answer(settings, customer):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=5, limit=3)
    client = token_client(customer)

    def hit(i):
        response = client.post(purchase_url(activity), format="json", HTTP_IDEMPOTENCY_KEY="double-tap")
        return response.status_code, response.json()["order"]["number"]

    results = run_concurrently(hit, 20, timeout=60)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert {status for status, _ in results} == {201} and len({number for _, number in results}) == 1
    assert Order.objects.count() == 1
    assert_invariants(activity, expect_sold=1)


@pytest.fixture
def patient_ack(settings):
    """A burst of ~900 threads in one interpreter shares one GIL, which stretches a single
    request to seconds; gunicorn workers serve one request each and never see this. In
    `committed` mode a request must still get its order, not time out into a 202."""
    settings.SECKILL_ACK_WAIT_SECONDS = 60.0


def _burst(activity, users, per_customer):
    clients = [token_client(u) for u in users]
    url = purchase_url(activity)

    def hit(i):
        customer, copy = divmod(i, per_customer)
        quantity = 1 if activity.per_user_limit == 1 else 1 + (customer + copy) % 2
        response = clients[customer].post(url, {"quantity": quantity}, format="json", REMOTE_ADDR=f"10.1.{customer}.1")
        body = response.json()
        return response.status_code, body.get("code"), quantity, body

    return run_concurrently(hit, len(users) * per_customer, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("ack", ["committed", "reserved"])
def test_burst_200_customers_times_3_parallel_requests_against_stock_40(many_connections, patient_ack, settings, ack):
    settings.SECKILL_ACK = ack
    activity = create_sale(stock=40, limit=1)
    users = create_customers(200)
    results = _burst(activity, users, per_customer=3)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    statuses = Counter((status, code) for status, code, _, _ in results)
    accepted = 201 if ack == "committed" else 202
    assert statuses[(accepted, None)] == 40, statuses
    assert set(statuses) <= {(accepted, None), (409, "sold_out"), (409, "limit_reached")}, statuses
    numbers = {body["order"]["number"] for status, _, _, body in results if status == accepted}
    writer.drain(activity.pk)  # reserved mode: the orders are written after the answers
    assert set(Order.objects.values_list("number", flat=True)) == numbers  # every acknowledgement has its order
    assert SeckillOrder.objects.count() == 40
    assert SeckillOrder.objects.values("user").distinct().count() == 40
    assert_invariants(activity, expect_sold=40)
    assert stock.remaining(activity.pk) == 0


@pytest.mark.slow
def test_burst_with_limit_2_and_mixed_quantities(many_connections, patient_ack):
    activity = create_sale(stock=50, limit=2)
    users = create_customers(120)
    results = _burst(activity, users, per_customer=3)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    statuses = Counter((status, code) for status, code, _, _ in results)
    assert set(statuses) <= {(201, None), (409, "sold_out"), (409, "limit_reached")}, statuses
    sold = sum(q for status, _, q, _ in results if status == 201)
    assert sold == 50, statuses
    assert_invariants(activity, expect_sold=50)

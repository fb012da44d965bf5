"""Abuse limits on buying: rate limits, the purchase token, the shared-address rule.

- Per-customer and per-address rate limits (SECKILL_RATE_LIMIT_*, inside purchase.lua).
- Purchase token (seckill/purchase_token.py, SECKILL_PURCHASE_TOKEN_REQUIRED): handed
  out only shortly before the start, bound to customer and sale, short-lived; without
  a good one the purchase is 403 and nothing moves.
- Buyers per address (seckill/shared_ip.py, SECKILL_BUYERS_PER_IP): off by default;
  when on, a second account from one address is refused with 409 limit_reached.
Every refusal is checked to change nothing: orders, DB pool and Redis stock.
"""

import time

import pytest
from django.core import signing
from django.test import Client

from orders.models import Order
from seckill import purchase_token, shared_ip, stock
from seckill.purchase import purchase
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants
from shop.tests.concurrency import run_concurrently
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


def purchase_url(activity):
    return f"/api/seckill/activities/{activity.pk}/purchase/"


def token_url(activity):
    return f"/api/seckill/activities/{activity.pk}/token/"


def nothing_sold(activity):
    assert not Order.objects.exists()
    assert stock.remaining(activity.pk) == activity.stock_total
    assert_invariants(activity, expect_sold=0)


# --- rate limits ---------------------------------------------------------------------------


def test_per_address_rate_limit_stops_many_accounts_from_one_address(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    settings.SECKILL_RATE_LIMIT_PER_IP = 3
    activity = create_sale(stock=10)
    clients = [token_client(u) for u in create_customers(5, prefix="bot")]
    codes = [c.post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.9").status_code for c in clients]
    assert codes == [201, 201, 201, 429, 429]
    refused = clients[3].post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.9")
    assert refused.json()["code"] == "rate_limited" and refused.json()["detail"]
    elsewhere = clients[4].post(purchase_url(activity), format="json", REMOTE_ADDR="198.51.100.4")
    assert elsewhere.status_code == 201
    assert_invariants(activity, expect_sold=4)


def test_per_customer_rate_limit_on_the_buy_form_says_so(settings, customer):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 1
    activity = create_sale(stock=10, limit=5)
    client = Client()
    client.force_login(customer)
    client.post(f"/sales/{activity.pk}/buy/")
    response = client.post(f"/sales/{activity.pk}/buy/", follow=True)
    assert "Too many attempts" in response.content.decode()
    assert_invariants(activity, expect_sold=1)


def test_a_flood_from_one_account_sells_it_at_most_its_limit(settings, customer):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=20, limit=2)
    client = token_client(customer)
    codes = [client.post(purchase_url(activity), format="json").status_code for _ in range(15)]
    assert codes.count(201) == 2 and set(codes) == {201, 409}
    assert_invariants(activity, expect_sold=2)


# --- purchase token -------------------------------------------------------------------------


@pytest.fixture
def tokens_on(settings):
    settings.SECKILL_PURCHASE_TOKEN_REQUIRED = True
    settings.SECKILL_PURCHASE_TOKEN_LEAD_SECONDS = 60
    settings.SECKILL_PURCHASE_TOKEN_MAX_AGE_SECONDS = 120
    return settings


def test_purchase_without_token_is_403_and_changes_nothing(tokens_on, customer_api):
    activity = create_sale(stock=5)
    response = customer_api.post(purchase_url(activity), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "purchase_token_required" and response.json()["detail"]
    nothing_sold(activity)


def test_token_from_the_api_lets_the_customer_buy(tokens_on, customer_api):
    activity = create_sale(stock=5)
    issued = customer_api.get(token_url(activity))
    assert issued.status_code == 200 and issued["Cache-Control"] == "no-store"
    assert issued.json()["expires_in"] == 120
    response = customer_api.post(purchase_url(activity), format="json", HTTP_PURCHASE_TOKEN=issued.json()["token"])
    assert response.status_code == 201
    assert_invariants(activity, expect_sold=1)


@pytest.mark.parametrize("starts_in,status,code", [(600, 409, "not_started"), (30, 200, None), (-30, 200, None)])
def test_tokens_are_handed_out_only_from_the_lead_time_before_the_start(
    tokens_on, customer_api, starts_in, status, code
):
    activity = create_sale(stock=5, starts_in=starts_in)
    response = customer_api.get(token_url(activity))
    assert response.status_code == status
    if code:
        assert response.json()["code"] == code and "60 s before the start" in response.json()["detail"]


def test_an_early_token_cannot_fire_before_the_start(tokens_on, customer_api):
    activity = create_sale(stock=5, starts_in=30)
    token = customer_api.get(token_url(activity)).json()["token"]
    response = customer_api.post(purchase_url(activity), format="json", HTTP_PURCHASE_TOKEN=token)
    assert (response.status_code, response.json()["code"]) == (409, "not_started")
    nothing_sold(activity)


def test_token_endpoint_for_ended_unknown_sales_and_anonymous(tokens_on, api, customer_api):
    ended = create_sale(stock=5, starts_in=-7200, duration=3600, warm=False)
    assert customer_api.get(token_url(ended)).json()["code"] == "ended"
    assert customer_api.get("/api/seckill/activities/999999/token/").status_code == 404
    assert api.get(token_url(ended)).status_code == 401


def bad_tokens(activity, customer, other_customer, monkeypatch):
    other_sale = create_sale(stock=1, title="Other sale")
    good = purchase_token.issue(user_id=customer.pk, activity_id=activity.pk).token
    with monkeypatch.context() as patched:  # a token signed 10 minutes ago
        patched.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(int(time.time()) - 600))
        expired = purchase_token.issue(user_id=customer.pk, activity_id=activity.pk).token
    forged = signing.dumps({"u": customer.pk, "a": activity.pk}, key="not-our-secret", salt=purchase_token.SALT)
    return {
        "garbage": "not-a-token",
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "other customer's": purchase_token.issue(user_id=other_customer.pk, activity_id=activity.pk).token,
        "other sale's": purchase_token.issue(user_id=customer.pk, activity_id=other_sale.pk).token,
        "expired": expired,
        "forged": forged,
        "huge": "x" * 10_000,
    }


def test_bad_tokens_are_403_purchase_token_invalid(tokens_on, customer, other_customer, customer_api, monkeypatch):
    activity = create_sale(stock=5)
    for name, token in bad_tokens(activity, customer, other_customer, monkeypatch).items():
        response = customer_api.post(purchase_url(activity), format="json", HTTP_PURCHASE_TOKEN=token)
        assert response.status_code == 403, name
        assert response.json()["code"] == "purchase_token_invalid", name
    nothing_sold(activity)


def test_the_sale_page_embeds_the_token_and_the_form_needs_it(tokens_on, customer):
    activity = create_sale(stock=5)
    client = Client()
    client.force_login(customer)
    page = client.get(f"/sales/{activity.pk}/")
    token = page.context["gate"].value
    html = page.content.decode()
    assert token and f'name="purchase_token" value="{token}"' in html and "data-token-url=" in html
    refused = client.post(f"/sales/{activity.pk}/buy/", {"purchase_token": "forged"}, follow=True)
    assert "not valid for this sale" in refused.content.decode() and not Order.objects.exists()
    missing = client.post(f"/sales/{activity.pk}/buy/", follow=True)
    assert "needs a purchase token" in missing.content.decode() and not Order.objects.exists()
    bought = client.post(f"/sales/{activity.pk}/buy/", {"purchase_token": token}, follow=True)
    assert "You got it!" in bought.content.decode()
    assert_invariants(activity, expect_sold=1)


def test_a_page_loaded_long_before_the_start_has_no_token_yet(tokens_on, customer):
    activity = create_sale(stock=5, starts_in=3600)
    client = Client()
    client.force_login(customer)
    page = client.get(f"/sales/{activity.pk}/")
    assert page.context["gate"].value == "" and 'data-token-lead-ms="60000"' in page.content.decode()


def test_tokens_are_off_by_default(customer_api, settings):
    assert settings.SECKILL_PURCHASE_TOKEN_REQUIRED is False
    activity = create_sale(stock=5)
    assert customer_api.post(purchase_url(activity), format="json").status_code == 201
    assert "purchase_token" not in Client().get(f"/sales/{activity.pk}/").content.decode()


# --- buyers per address -----------------------------------------------------------------------


@pytest.fixture
def one_buyer_per_address(settings):
    settings.SECKILL_BUYERS_PER_IP = 1
    settings.SECKILL_RATE_LIMIT_PER_IP = 0
    return settings


def test_second_account_from_one_address_is_refused_409(one_buyer_per_address, customer, other_customer):
    activity = create_sale(stock=10, limit=2)
    alice, bob = token_client(customer), token_client(other_customer)
    assert alice.post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.5").status_code == 201
    refused = bob.post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.5")
    assert refused.status_code == 409 and refused.json()["code"] == "limit_reached"
    assert "per network" in refused.json()["detail"]
    assert_invariants(activity, expect_sold=1)
    # The account that holds the address's slot may buy again up to its own limit...
    assert alice.post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.5").status_code == 201
    # ...and the other account may buy from another address.
    assert bob.post(purchase_url(activity), format="json", REMOTE_ADDR="198.51.100.8").status_code == 201
    assert shared_ip.buyers_from(activity.pk, "203.0.113.5") == {customer.pk}
    assert_invariants(activity, expect_sold=3)


def test_a_refused_purchase_does_not_take_the_address_slot(one_buyer_per_address, customer, other_customer):
    activity = create_sale(stock=1)
    purchase(activity_id=activity.pk, user=customer, quantity=1)  # sold out, bought from elsewhere
    bob = token_client(other_customer)
    assert bob.post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.6").json()["code"] == "sold_out"
    assert shared_ip.buyers_from(activity.pk, "203.0.113.6") == set()


def test_the_rule_holds_when_accounts_race_from_one_address(one_buyer_per_address):
    activity = create_sale(stock=20)
    clients = [token_client(u) for u in create_customers(8, prefix="racer")]

    def hit(i):
        return clients[i].post(purchase_url(activity), format="json", REMOTE_ADDR="203.0.113.7").status_code

    codes = run_concurrently(hit, len(clients))
    assert sorted(codes) == [201] + [409] * 7, codes
    assert_invariants(activity, expect_sold=1)


def test_the_buy_form_tells_the_second_account_why(one_buyer_per_address, customer, other_customer):
    activity = create_sale(stock=10)
    for user, expected in ((customer, "You got it!"), (other_customer, "per network")):
        client = Client()
        client.force_login(user)
        response = client.post(f"/sales/{activity.pk}/buy/", follow=True, REMOTE_ADDR="203.0.113.8")
        assert expected in response.content.decode()
    assert_invariants(activity, expect_sold=1)


def test_the_rule_is_off_by_default(settings, customer, other_customer):
    assert settings.SECKILL_BUYERS_PER_IP == 0
    activity = create_sale(stock=10)
    for user in (customer, other_customer):
        assert token_client(user).post(purchase_url(activity), format="json").status_code == 201


# --- replay across sales ------------------------------------------------------------------------


def test_one_idempotency_key_in_two_sales_buys_in_both(customer_api):
    """The key is scoped to the sale: the same client key in two sales is two purchases."""
    first, second = create_sale(stock=5, title="First"), create_sale(stock=5, title="Second")
    one = customer_api.post(purchase_url(first), format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    two = customer_api.post(purchase_url(second), format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.json()["order"]["number"] != one.json()["order"]["number"]
    assert "Idempotent-Replayed" not in two
    assert_invariants(first, expect_sold=1)
    assert_invariants(second, expect_sold=1)


def test_a_checkout_key_reused_in_a_sale_is_a_separate_purchase(customer_api, product):
    checkout = customer_api.post(
        "/api/orders/", {"items": [{"product": product.slug, "quantity": 1}]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    sale = create_sale(stock=5)
    bought = customer_api.post(purchase_url(sale), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (checkout.status_code, bought.status_code) == (201, 201)
    assert bought.json()["order"]["source"] == "seckill"
    assert_invariants(sale, expect_sold=1)

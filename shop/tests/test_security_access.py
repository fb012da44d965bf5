"""Access control: every order (written or still being confirmed) and admin URL, tried three ways.

- API: anonymous gets 401 JSON; another customer gets 404 (not 403: a 403 would
  confirm that the order number exists); staff on the API is just another customer.
- Pages: anonymous is sent to the login page; another customer and staff get 404.
- Admin: anonymous and customers are sent to the admin login; staff without the
  model's permission get 403; a superuser gets in.
- Order numbers are random (60 bits), never the sequential primary key.
Every refused request changes nothing: the order keeps its status, the stock its count.
"""

import itertools
import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from orders.models import Order
from orders.services import CartLine, order_create
from seckill.purchase import purchase
from seckill.tests.conftest import create_sale
from shop.models import Product
from shop.tests.factories import ProductFactory, UserFactory, token_client

pytestmark = pytest.mark.django_db

# Crockford's base32 digits as the digits int(..., 32) reads, to turn a number into its 60 bits.
CROCKFORD_TO_BASE32 = str.maketrans("ABCDEFGHJKMNPQRSTVWXYZ", "ABCDEFGHIJKLMNOPQRSTUV")
ORDER_NUMBER = re.compile(r"^FS-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


@pytest.fixture
def world(customer, settings):
    """Alice's checkout order, her flash-sale order and a flash-sale order still being written."""
    product = ProductFactory(slug="lamp", stock=10)
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    sale = create_sale(stock=5, limit=2)
    sale_order = purchase(activity_id=sale.pk, user=customer, quantity=1).order
    settings.SECKILL_ACK = "reserved"  # accepted, its intent waits: no writer runs in reserved mode here
    confirming = purchase(activity_id=sale.pk, user=customer, quantity=1).number
    settings.SECKILL_ACK = "committed"
    return {"order": order, "sale_order": sale_order, "confirming": confirming, "sale": sale, "product": product}


def unchanged(world):
    """The refused requests moved nothing."""
    statuses = set(
        Order.objects.filter(pk__in=[world["order"].pk, world["sale_order"].pk]).values_list("status", flat=True)
    )
    assert statuses == {Order.Status.PENDING_PAYMENT}
    assert Product.objects.get(pk=world["product"].pk).stock == 8


def api_calls(world):
    number, sale_number, confirming = world["order"].number, world["sale_order"].number, world["confirming"]
    calls = []
    for n in (number, sale_number):
        calls += [
            ("get", f"/api/orders/{n}/"),
            ("post", f"/api/orders/{n}/pay/"),
            ("post", f"/api/orders/{n}/cancel/"),
        ]
    return [*calls, ("get", f"/api/orders/{confirming}/")]


def page_calls(world):
    number, sale_number, confirming = world["order"].number, world["sale_order"].number, world["confirming"]
    calls = []
    for n in (number, sale_number):
        calls += [("get", f"/orders/{n}/"), ("post", f"/orders/{n}/pay/"), ("post", f"/orders/{n}/cancel/")]
    return [*calls, ("get", f"/orders/{confirming}/")]


# --- API ----------------------------------------------------------------------------------


def test_api_order_urls_are_401_for_anonymous(world):
    client = APIClient()
    for method, url in [*api_calls(world), ("get", "/api/orders/"), ("post", "/api/orders/")]:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated", url
    purchase_url = f"/api/seckill/activities/{world['sale'].pk}/purchase/"
    assert client.post(purchase_url, {}, format="json").status_code == 401
    assert client.get(f"/api/seckill/activities/{world['sale'].pk}/token/").status_code == 401
    unchanged(world)


@pytest.mark.parametrize("who", ["other customer", "staff"])
def test_api_order_urls_are_404_for_anyone_else(world, other_customer, staff, who):
    client = token_client(other_customer if who == "other customer" else staff)
    for method, url in api_calls(world):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, url
        assert response.json() == {"code": "not_found", "detail": response.json()["detail"]}, url
    assert client.get("/api/orders/").json()["count"] == 0  # the list shows only one's own orders
    unchanged(world)


def test_the_owner_can_reach_every_api_url(world, customer_api):
    for method, url in api_calls(world):
        if method == "get":
            assert customer_api.get(url).status_code == 200, url


def test_an_unknown_order_number_and_another_customers_get_the_same_answer(world, other_api):
    """No oracle: a number that exists but is not yours looks exactly like one that does not."""
    theirs = other_api.get(f"/api/orders/{world['order'].number}/")
    nobody = other_api.get("/api/orders/FS-0000-0000-0000/")
    assert (theirs.status_code, theirs.json()) == (nobody.status_code, nobody.json())


# --- pages --------------------------------------------------------------------------------


def test_order_pages_send_anonymous_to_login(world):
    client = Client()
    for method, url in [*page_calls(world), ("get", "/orders/"), ("get", "/checkout/")]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    response = client.post(f"/sales/{world['sale'].pk}/buy/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    unchanged(world)


@pytest.mark.parametrize("who", ["other customer", "staff"])
def test_order_pages_are_404_for_anyone_else(world, other_customer, staff, who):
    client = Client()
    client.force_login(other_customer if who == "other customer" else staff)
    for method, url in page_calls(world):
        assert getattr(client, method)(url).status_code == 404, url
    listing = client.get("/orders/").content.decode()
    assert world["order"].number not in listing and world["sale_order"].number not in listing
    unchanged(world)


# --- admin --------------------------------------------------------------------------------


def admin_urls(world):
    """The admin index and, for every registered model, its list, add page and one object's page."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return urls


def test_admin_sends_anonymous_and_customers_to_the_admin_login(world, customer):
    urls = admin_urls(world)
    assert any("/orders/order/" in u for u in urls) and any("/seckill/seckillactivity/" in u for u in urls)
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(customer)
    for client in (anonymous, logged_in):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
    order = world["order"]
    response = logged_in.post(
        reverse("admin:orders_order_changelist"), {"action": "cancel_orders", "_selected_action": [order.pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    unchanged(world)


def test_staff_without_permissions_get_403_on_every_model_page(world):
    clerk = UserFactory(username="clerk", is_staff=True)
    client = Client()
    client.force_login(clerk)
    assert client.get(reverse("admin:index")).status_code == 200  # an empty index, nothing listed
    for url in admin_urls(world)[1:]:
        assert client.get(url).status_code == 403, url
    order = world["order"]
    response = client.post(
        reverse("admin:orders_order_changelist"), {"action": "cancel_orders", "_selected_action": [order.pk]}
    )
    assert response.status_code == 403
    unchanged(world)


def test_superuser_reaches_every_admin_page(world, staff, rf):
    request = rf.get("/admin/")
    request.user = staff
    read_only = {  # models created only by the shop itself (orders, refusals, runs): no add page, for anybody
        reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_add")
        for m, model_admin in admin.site._registry.items()
        if not model_admin.has_add_permission(request)
    }
    client = Client()
    client.force_login(staff)
    for url in admin_urls(world):
        assert client.get(url).status_code == (403 if url in read_only else 200), url


def test_metrics_are_for_staff_only(customer, staff):
    assert Client().get("/metrics").status_code == 403
    logged_in = Client()
    logged_in.force_login(customer)
    assert logged_in.get("/metrics").status_code == 403
    logged_in.force_login(staff)
    assert logged_in.get("/metrics").status_code == 200


# --- enumeration ----------------------------------------------------------------------------


def test_order_numbers_are_random_not_sequential(customer, customer_api):
    product = ProductFactory(slug="pen", stock=100)
    orders = [order_create(user=customer, lines=[CartLine(product.pk, 1)])[0] for _ in range(40)]
    numbers = [o.number for o in orders]
    assert all(ORDER_NUMBER.match(n) for n in numbers), numbers[:3]
    assert len(set(numbers)) == len(numbers)
    values = [int(n.replace("FS-", "").replace("-", "").translate(CROCKFORD_TO_BASE32), 32) for n in numbers]
    # Neither increasing with creation nor close to each other: nothing to count up from.
    assert values != sorted(values) and values != sorted(values, reverse=True)
    gaps = [abs(b - a) for a, b in itertools.pairwise(values)]
    assert min(gaps) > 1000, min(gaps)
    # The API never shows the primary key that would be sequential.
    body = customer_api.get(f"/api/orders/{numbers[0]}/").json()
    assert "id" not in body and "pk" not in body and body["number"] == numbers[0]


def test_an_order_still_being_written_shows_its_state_only_to_its_customer(world, customer_api, other_api):
    number = world["confirming"]
    assert ORDER_NUMBER.match(number)  # the web process picks it: the same unguessable form as any order
    assert customer_api.get(f"/api/orders/{number}/").json()["status"] == "confirming"
    assert other_api.get(f"/api/orders/{number}/").status_code == 404

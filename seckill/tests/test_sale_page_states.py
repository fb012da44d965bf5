"""The sale page and the flash-sales page in each state a customer meets.

A customer at the limit is told so and linked to the order; anonymous visitors are not
invited to log in to a sale they could not buy from; an ended sale reports what sold;
a GET on the buy URL, or a buy after the session ended, buys nothing.
"""

import pytest
from django.test import Client

from orders.models import Order
from seckill.tests.conftest import create_sale

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in(customer):
    client = Client()
    client.force_login(customer)
    return client


def test_a_customer_at_the_limit_sees_it_and_a_link_to_the_order(logged_in):
    activity = create_sale(stock=5, limit=1)
    logged_in.post(f"/sales/{activity.pk}/buy/", {"idempotency_key": "k-1"})
    order = Order.objects.get()
    html = logged_in.get(f"/sales/{activity.pk}/").content.decode()
    assert "You already hold 1 of this sale, the limit per customer." in html
    assert f'href="/orders/{order.number}/"' in html
    assert 'data-limit-reached="1"' in html and 'data-testid="buy" disabled>' in html
    assert html.split('data-testid="buy" disabled>')[1].split("</button>")[0].strip() == "Limit reached"
    order.status = Order.Status.CANCELLED
    order.save(update_fields=["status"])
    html = logged_in.get(f"/sales/{activity.pk}/").content.decode()
    assert "data-limit-reached" not in html and "You already hold" not in html  # a cancelled order frees the limit


def test_anonymous_visitors_see_sold_out_and_ended_not_log_in(client, customer):
    sold_out = create_sale(stock=1, title="Gone")
    buyer = Client()
    buyer.force_login(customer)
    buyer.post(f"/sales/{sold_out.pk}/buy/")
    ended = create_sale(stock=5, starts_in=-7200, duration=3600, title="Over", warm=False)
    live = create_sale(stock=5, title="Open")
    html = client.get(f"/sales/{sold_out.pk}/").content.decode()
    assert 'data-testid="buy-closed"' in html and "Sold out" in html and "Log in to buy" not in html
    html = client.get(f"/sales/{ended.pk}/").content.decode()
    assert "Sale ended" in html and "Log in to buy" not in html
    assert "Log in to buy" in client.get(f"/sales/{live.pk}/").content.decode()


def test_an_ended_sale_reports_what_sold_not_what_is_left(client, customer):
    activity = create_sale(stock=5, starts_in=-7200, duration=3600, warm=False)
    html = client.get(f"/sales/{activity.pk}/").content.decode()
    assert "Sale ended · 0 of 5 sold" in html and "of 5 left" not in html and 'class="bar big ended"' in html


def test_get_on_the_buy_url_goes_back_to_the_sale_and_buys_nothing(logged_in):
    activity = create_sale(stock=5)
    response = logged_in.get(f"/sales/{activity.pk}/buy/", follow=True)
    assert response.redirect_chain[-1][0] == f"/sales/{activity.pk}/"
    assert "Nothing was bought yet" in response.content.decode() and not Order.objects.exists()


def test_buying_after_the_session_ended_leads_to_login_then_back_to_the_sale(client, customer):
    activity = create_sale(stock=5)
    response = client.post(f"/sales/{activity.pk}/buy/", follow=True)
    assert response.redirect_chain[-1][0] == f"/accounts/login/?next=/sales/{activity.pk}/"
    assert "Your session has ended" in response.content.decode() and not Order.objects.exists()
    response = client.post(
        f"/accounts/login/?next=/sales/{activity.pk}/",
        {"username": "alice", "password": "pass-for-tests-1", "next": f"/sales/{activity.pk}/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/sales/{activity.pk}/" and not Order.objects.exists()


def test_flash_sales_page_groups_live_upcoming_and_past(client):
    create_sale(stock=5, title="Live deal")
    create_sale(stock=5, starts_in=600, title="Coming deal", warm=False)
    create_sale(stock=4, starts_in=-7200, duration=3600, title="Old deal", warm=False)
    create_sale(stock=4, starts_in=-90 * 86400, duration=3600, title="Ancient deal", warm=False)
    response = client.get("/sales/")
    groups = response.context["groups"]
    assert [v.activity.title for v in groups["live"]] == ["Live deal"]
    assert [v.activity.title for v in groups["upcoming"]] == ["Coming deal"]
    assert [v.activity.title for v in groups["past"]] == ["Old deal"]
    html = response.content.decode()
    assert "0 of 4 sold" in html and "Ancient deal" not in html and "sales.js" in html

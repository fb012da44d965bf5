"""The "Add flash sale" form puts every refusal next to its field, in words (seckill/models.py)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from seckill.models import SeckillActivity
from seckill.tests.test_admin import _form
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)
ADD = "/admin/seckill/seckillactivity/add/"


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def _refused(staff_client, **overrides):
    product = ProductFactory(price="100.00", stock=8)
    response = staff_client.post(ADD, _form(product, **overrides))
    assert response.status_code == 200, response.status_code
    assert not SeckillActivity.objects.exists()
    form = response.context["adminform"].form
    html = response.content.decode()
    assert "Constraint" not in html and "is violated" not in html
    return form, html


@pytest.mark.parametrize(
    "overrides,field,words",
    [
        ({"per_user_limit": 0}, "per_user_limit", "Each customer must be allowed at least one unit."),
        ({"price": "-5.00"}, "price", "The sale price must be more than zero."),
        ({"price": "0.00"}, "price", "The sale price must be more than zero."),
        ({"stock_total": 0}, "stock_total", "A sale needs at least one unit to sell."),
        ({"payment_minutes": 0}, "payment_minutes", "Customers need at least one minute to pay."),
        ({"bucket_count": 0}, "bucket_count", "A sale needs at least one stock bucket."),
        ({"bucket_count": 17}, "bucket_count", "At most 16 stock buckets per sale."),
    ],
)
def test_a_broken_rule_is_a_message_in_words_next_to_its_field(staff_client, overrides, field, words):
    form, html = _refused(staff_client, **overrides)
    assert words in form.errors[field], form.errors
    assert not form.non_field_errors(), form.non_field_errors()
    assert f'id="id_{field}_error"' in html and words in html


def test_a_sale_whose_whole_window_is_in_the_past_is_refused(staff_client):
    past = timezone.now() - timedelta(days=2)
    form, _ = _refused(
        staff_client,
        starts_at_0=past.strftime("%Y-%m-%d"),
        starts_at_1="10:00:00",
        ends_at_0=past.strftime("%Y-%m-%d"),
        ends_at_1="12:00:00",
    )
    (message,) = form.errors["ends_at"]
    assert "in the past" in message and "Choose an end in the future" in message
    assert not form.non_field_errors()


def test_the_add_form_has_no_live_state_block(staff_client):
    html = staff_client.get(ADD).content.decode()
    assert "Live state" not in html and "Window" in html


def test_a_sale_that_ended_can_still_be_edited(staff_client, customer):
    """The past-window rule is for new sales only: staff may rename or disable an ended one."""
    from seckill.tests.conftest import create_sale

    activity = create_sale(stock=2, starts_in=-7200, duration=3600)
    activity.title = "Renamed"
    activity.full_clean()

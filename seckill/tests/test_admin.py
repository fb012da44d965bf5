from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from seckill import stock
from seckill.models import SeckillActivity
from seckill.purchase import purchase
from seckill.tests.conftest import create_sale
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client_(staff):
    client = Client()
    client.force_login(staff)
    return client


def _form(product, **overrides):
    now = timezone.now()
    data = {
        "title": "Admin sale",
        "product": product.pk,
        "price": "50.00",
        "is_enabled": "on",
        "stock_total": 5,
        "per_user_limit": 1,
        "payment_minutes": 15,
        "bucket_count": 1,
        "starts_at_0": (now + timedelta(hours=1)).strftime("%Y-%m-%d"),
        "starts_at_1": (now + timedelta(hours=1)).strftime("%H:%M:%S"),
        "ends_at_0": (now + timedelta(hours=2)).strftime("%Y-%m-%d"),
        "ends_at_1": (now + timedelta(hours=2)).strftime("%H:%M:%S"),
    }
    data.update(overrides)
    return data


def test_staff_create_a_sale_and_warm_it_up(admin_client_):
    product = ProductFactory(price="100.00", stock=8)
    response = admin_client_.post("/admin/seckill/seckillactivity/add/", _form(product))
    assert response.status_code == 302, response.content.decode()[:2000]
    activity = SeckillActivity.objects.get()
    assert activity.published_at is None and stock.remaining(activity.pk) is None
    admin_client_.post("/admin/seckill/seckillactivity/", {"action": "warm_up_now", "_selected_action": [activity.pk]})
    activity.refresh_from_db()
    assert activity.published_at is not None and activity.stock_available == 5
    assert stock.remaining(activity.pk) == 5 and Product.objects.get(pk=product.pk).stock == 3


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"price": "100.00"}, "price", "below the regular price"),
        ({"stock_total": 9}, "stock_total", "Only 8 units"),
        ({"ends_at_1": "00:00:00", "ends_at_0": "2000-01-01"}, "ends_at", "end after it starts"),
    ],
)
def test_invalid_sales_are_refused_with_a_message(admin_client_, overrides, field, message):
    product = ProductFactory(price="100.00", stock=8)
    response = admin_client_.post("/admin/seckill/seckillactivity/add/", _form(product, **overrides))
    assert response.status_code == 200 and message in response.content.decode()
    assert not SeckillActivity.objects.exists()


def test_overlapping_sales_of_one_product_are_refused(admin_client_):
    product = ProductFactory(price="100.00", stock=20)
    assert admin_client_.post("/admin/seckill/seckillactivity/add/", _form(product)).status_code == 302
    response = admin_client_.post("/admin/seckill/seckillactivity/add/", _form(product, title="Second"))
    assert response.status_code == 200 and "must not overlap" in response.content.decode()
    assert SeckillActivity.objects.count() == 1


def test_live_sale_shows_counters_and_freezes_stock_and_window(admin_client_, customer):
    activity = create_sale(stock=5)
    purchase(activity_id=activity.pk, user=customer, quantity=1)
    listing = admin_client_.get("/admin/seckill/seckillactivity/").content.decode()
    assert "status-live" in listing
    page = admin_client_.get(f"/admin/seckill/seckillactivity/{activity.pk}/change/")
    html = page.content.decode()
    form_fields = page.context["adminform"].form.fields
    for frozen in ("stock_total", "starts_at", "ends_at", "payment_minutes", "price", "per_user_limit"):
        assert frozen not in form_fields, frozen
    assert "Left in Redis" in html and '<div class="readonly">4</div>' in html


def test_end_now_kill_switch_stops_sales_at_once(admin_client_, customer):
    activity = create_sale(stock=5)
    admin_client_.post("/admin/seckill/seckillactivity/", {"action": "end_now", "_selected_action": [activity.pk]})
    from seckill.errors import Ended

    with pytest.raises(Ended):
        purchase(activity_id=activity.pk, user=customer, quantity=1)
    assert SeckillActivity.objects.get(pk=activity.pk).ends_at <= timezone.now()


def test_resync_action_rewrites_redis_from_the_db(admin_client_, customer):
    activity = create_sale(stock=5)
    purchase(activity_id=activity.pk, user=customer, quantity=1)
    stock.redis().set(f"seckill:{{{activity.pk}}}:stock", 99)
    admin_client_.post("/admin/seckill/seckillactivity/", {"action": "resync_redis", "_selected_action": [activity.pk]})
    assert stock.remaining(activity.pk) == 4


def test_the_sale_admin_warns_when_reserved_acknowledgements_sit_on_a_redis_without_aof(admin_client, settings):
    from seckill.tests.conftest import create_sale

    create_sale(stock=3, title="Durable?")
    settings.SECKILL_ACK = "reserved"  # the test Redis runs with appendonly no
    page = admin_client.get("/admin/seckill/seckillactivity/").content.decode()
    assert "keeps nothing on disk" in page and "Durable?" in page
    settings.SECKILL_ACK = "committed"
    assert "keeps nothing on disk" not in admin_client.get("/admin/seckill/seckillactivity/").content.decode()


def test_the_sale_admin_shows_what_waits_for_the_writer(admin_client, settings, customer):
    from seckill.purchase import purchase
    from seckill.tests.conftest import create_sale

    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=3)
    purchase(activity_id=activity.pk, user=customer, quantity=1)
    page = admin_client.get(f"/admin/seckill/seckillactivity/{activity.pk}/change/").content.decode()
    assert "Waiting to be written" in page and "1 (oldest" in page

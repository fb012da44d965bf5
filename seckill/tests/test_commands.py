from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from seckill import stock
from seckill.models import SeckillActivity
from seckill.tests.conftest import create_sale
from shop.models import Product

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_sets_up_a_sale_starting_in_a_minute():
    first = run("seed_demo")
    assert "customer   / customer-demo-pass" in first and "Flash sale:" in first
    sale = SeckillActivity.objects.get()
    assert 50 <= (sale.starts_at - sale.created_at).total_seconds() <= 70
    assert stock.remaining(sale.pk) == sale.stock_total  # warmed, so it sells the moment it starts
    second = run("seed_demo")
    assert "already set up" in second and "Products: 0 created" in second
    assert SeckillActivity.objects.count() == 1 and Product.objects.count() == 6
    login = RequestFactory().post("/accounts/login/")  # django-axes' backend needs the request
    assert authenticate(login, username="customer", password="customer-demo-pass") is not None


def test_seckill_warmup_publishes_loads_and_is_safe_to_repeat():
    activity = create_sale(stock=4, starts_in=120, warm=False)
    out = run("seckill_warmup", "--activity", str(activity.pk))
    assert "published=yes loaded=yes remaining=4" in out
    out = run("seckill_warmup", "--activity", str(activity.pk))
    assert "published=already loaded=already in Redis remaining=4" in out
    assert SeckillActivity.objects.get(pk=activity.pk).stock_available == 4


def test_seckill_warmup_without_id_warms_sales_starting_soon():
    soon = create_sale(stock=2, starts_in=120, warm=False)
    later = create_sale(stock=2, starts_in=3600, warm=False)
    run("seckill_warmup")
    assert stock.remaining(soon.pk) == 2 and stock.remaining(later.pk) is None


def test_seckill_warmup_unknown_id_is_an_error():
    with pytest.raises(CommandError, match="No flash sale with id 999"):
        run("seckill_warmup", "--activity", "999")

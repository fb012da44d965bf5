"""An ended sale gives its unsold units back to the product once (seckill/services/lifecycle.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from reconciliation import runner
from seckill import purchase, services, stock, writer
from seckill.models import SeckillActivity
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants
from shop.models import Product
from shop.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def buy(activity, user):
    return purchase.purchase(activity_id=activity.pk, user=user, quantity=1)


def later(seconds=60):
    return timezone.now() + timedelta(seconds=seconds)


def product_stock(activity):
    return Product.objects.get(pk=activity.product_id).stock


def sale(activity):
    return SeckillActivity.objects.get(pk=activity.pk)


def clean_reconciliation():
    outcome = runner.reconcile(triggered_by="test")
    assert outcome.findings == [], [f.summary for f in outcome.findings]


def test_an_ended_sale_returns_its_unsold_units_once_and_the_books_still_balance():
    activity = create_sale(stock=5, product_stock=8)  # 3 free beside the 5 set aside
    assert product_stock(activity) == 3
    paid, pending = create_customers(2)
    order_services.order_pay(order=buy(activity, paid).order)
    buy(activity, pending)
    services.activity_end_now(activity_id=activity.pk)

    assert services.return_unsold_units(now=later()) == {activity.pk: 3}

    row = sale(activity)
    assert (row.stock_available, row.stock_returned, row.returned_at is not None) == (0, 3, True)
    assert product_stock(activity) == 6 and stock.remaining(activity.pk) == 0
    assert_invariants(activity, expect_sold=2)
    clean_reconciliation()
    # A second run, or the same sale asked again, returns nothing and changes nothing.
    assert services.return_unsold_units(now=later()) == {}
    assert services.activity_return_unsold(activity_id=activity.pk, now=later()) is None
    assert product_stock(activity) == 6 and sale(activity).stock_returned == 3


def test_a_live_or_just_ended_sale_keeps_its_units():
    activity = create_sale(stock=4, product_stock=4)
    assert services.return_unsold_units(now=timezone.now()) == {}
    services.activity_end_now(activity_id=activity.pk)
    assert services.return_unsold_units(now=timezone.now()) == {}  # within RETURN_AFTER_END
    assert sale(activity).stock_available == 4 and product_stock(activity) == 0


def test_purchases_still_waiting_for_the_writer_hold_the_return_back(settings):
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=3, product_stock=3)
    (buyer,) = create_customers(1)
    assert buy(activity, buyer).status == 202  # accepted, not written yet
    services.activity_end_now(activity_id=activity.pk)

    assert services.activity_return_unsold(activity_id=activity.pk, now=later()) is None
    assert sale(activity).stock_available == 3 and product_stock(activity) == 0

    writer.drain(activity.pk)
    assert services.activity_return_unsold(activity_id=activity.pk, now=later()) == 2
    assert product_stock(activity) == 2 and Order.objects.count() == 1
    assert_invariants(activity, expect_sold=1)
    clean_reconciliation()


def test_orders_cancelled_or_expired_after_the_return_go_back_to_the_catalogue():
    activity = create_sale(stock=4, product_stock=4)
    first, second = create_customers(2)
    cancelled, expiring = buy(activity, first).order, buy(activity, second).order
    services.activity_end_now(activity_id=activity.pk)
    assert services.activity_return_unsold(activity_id=activity.pk, now=later()) == 2
    assert product_stock(activity) == 2

    order_services.order_cancel(order=cancelled)
    order_services.order_expire(order=Order.objects.get(pk=expiring.pk), now=later(3600))

    row = sale(activity)
    assert (row.stock_available, row.stock_returned) == (0, 4)
    assert product_stock(activity) == 4 and stock.remaining(activity.pk) == 0
    assert_invariants(activity, expect_sold=0)
    clean_reconciliation()


def test_a_cancellation_before_the_return_is_counted_in_the_pool_it_returns():
    activity = create_sale(stock=3, product_stock=3)
    (buyer,) = create_customers(1)
    order = buy(activity, buyer).order
    order_services.order_cancel(order=order)
    services.activity_end_now(activity_id=activity.pk)
    assert services.activity_return_unsold(activity_id=activity.pk, now=later()) == 3
    assert product_stock(activity) == 3
    assert_invariants(activity, expect_sold=0)


def test_eight_returns_racing_return_the_units_once():
    activity = create_sale(stock=6, product_stock=6)
    services.activity_end_now(activity_id=activity.pk)
    now = later()
    results = run_concurrently(lambda i: services.activity_return_unsold(activity_id=activity.pk, now=now), 8)
    assert sorted(results, key=str) == [6] + [None] * 7, results
    assert product_stock(activity) == 6 and sale(activity).stock_returned == 6


def test_the_beat_task_runs_the_return():
    from seckill.tasks import return_unsold_units

    activity = create_sale(stock=2, product_stock=2, starts_in=-7200, duration=3600, warm=False)
    services.activity_publish(activity_id=activity.pk)
    assert return_unsold_units() == {str(activity.pk): 2}
    assert return_unsold_units() == {}
    assert product_stock(activity) == 2

"""The purchase service (seckill/purchase.py) with the real Redis and MariaDB."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from core.errors import InvalidState
from locks import RedisLock
from orders import services as order_services
from orders.models import Order
from seckill import cache, keys, purchase, services, stock
from seckill.errors import Busy, Ended, LimitReached, NotFound, NotStarted, SoldOut, Unavailable
from seckill.models import SeckillOrder, SeckillQuota, SeckillTicket
from seckill.services import order_write
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants, sale_state
from shop.models import Product
from shop.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def buy(activity, user, quantity=1, key=None):
    return purchase.purchase(activity_id=activity.pk, user=user, quantity=quantity, idempotency_key=key)


def test_a_purchase_writes_the_order_and_moves_every_counter(customer):
    activity = create_sale(stock=5)
    outcome = buy(activity, customer)
    order = outcome.order
    assert outcome.status == 201 and order.source == Order.Source.SECKILL
    assert order.status == Order.Status.PENDING_PAYMENT and order.total == activity.price
    assert timezone.now() + timedelta(minutes=14) < order.expires_at <= timezone.now() + timedelta(minutes=15)
    item = order.items.get()
    assert (item.product_id, item.quantity, item.unit_price) == (activity.product_id, 1, activity.price)
    link = SeckillOrder.objects.get(order=order)
    assert link.activity_id == activity.pk and link.fencing_token > 0
    assert stock.remaining(activity.pk) == 4 and stock.held_by(activity.pk, customer.pk) == 1
    assert_invariants(activity, expect_sold=1)


def test_publishing_set_the_units_aside_from_the_product(customer):
    activity = create_sale(stock=5, product_stock=8)
    assert Product.objects.get(pk=activity.product_id).stock == 3
    buy(activity, customer)
    assert Product.objects.get(pk=activity.product_id).stock == 3  # sale units come from the pool


def test_second_unit_over_the_limit_is_refused_and_changes_nothing(customer):
    activity = create_sale(stock=5, limit=1)
    buy(activity, customer)
    with pytest.raises(LimitReached) as excinfo:
        buy(activity, customer)
    assert excinfo.value.status == 409 and "1 of the 1" in excinfo.value.detail
    with pytest.raises(LimitReached):
        buy(activity, customer, quantity=2)
    assert_invariants(activity, expect_sold=1)
    assert stock.remaining(activity.pk) == 4


def test_sold_out_then_the_flag_answers_without_redis(customer, other_customer):
    activity = create_sale(stock=1)
    buy(activity, customer)
    with pytest.raises(SoldOut):
        buy(activity, other_customer)
    stock.redis().delete(*keys.all_keys(activity.pk))  # with the flag set, Redis is not even asked
    with pytest.raises(SoldOut):
        buy(activity, other_customer)
    assert stock.remaining(activity.pk) is None


def test_sold_out_flag_expires_so_returned_units_sell_again(settings, customer, other_customer):
    settings.SECKILL_SOLD_OUT_RECHECK_SECONDS = 0
    activity = create_sale(stock=1)
    first = buy(activity, customer).order
    with pytest.raises(SoldOut):
        buy(activity, other_customer)
    order_services.order_cancel(order=first)
    assert buy(activity, other_customer).order is not None
    assert_invariants(activity, expect_sold=1)


def test_not_started_ended_disabled_and_unknown(customer):
    upcoming = create_sale(stock=5, starts_in=600, warm=False)
    with pytest.raises(NotStarted):
        buy(upcoming, customer)
    warmed_upcoming = create_sale(stock=5, starts_in=600)
    with pytest.raises(NotStarted):
        buy(warmed_upcoming, customer)
    ended = create_sale(stock=5)
    services.activity_end_now(activity_id=ended.pk)
    with pytest.raises(Ended):
        buy(ended, customer)
    disabled = create_sale(stock=5, starts_in=600, is_enabled=False, warm=False)
    with pytest.raises(NotFound):
        buy(disabled, customer)
    with pytest.raises(NotFound):
        purchase.purchase(activity_id=999999, user=customer, quantity=1)
    assert not Order.objects.exists()


def test_same_idempotency_key_gets_the_same_order_once(customer):
    activity = create_sale(stock=5, limit=2)
    first = buy(activity, customer, key="tap-1")
    again = buy(activity, customer, key="tap-1")
    assert again.replayed and again.order.number == first.order.number
    assert_invariants(activity, expect_sold=1)


def test_idempotent_answer_survives_redis_losing_it(customer):
    activity = create_sale(stock=5, limit=1)
    first = buy(activity, customer, key="tap-1")
    stock.redis().delete(keys.idempotent_answer(activity.pk, customer.pk, "tap-1"))
    again = buy(activity, customer, key="tap-1")
    assert again.replayed and again.order.number == first.order.number
    assert Order.objects.count() == 1


def test_idempotent_refusal_is_remembered(settings, customer, other_customer):
    settings.SECKILL_SOLD_OUT_RECHECK_SECONDS = 0
    activity = create_sale(stock=1)
    buy(activity, other_customer)
    cache.clear()
    with pytest.raises(SoldOut):
        buy(activity, customer, key="k")
    order_services.order_cancel(order=Order.objects.get())
    with pytest.raises(SoldOut):  # same key, same answer, although a unit came back
        buy(activity, customer, key="k")
    assert buy(activity, customer, key="k2").order is not None


def test_db_failures_give_the_reservation_back_so_every_unit_still_sells(monkeypatch):
    """Undersell is a bug too: reservations whose DB write failed go back on sale."""
    activity = create_sale(stock=10)
    buyers = create_customers(30)
    real = order_write._seckill_order_tx
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        return real(**kwargs)

    monkeypatch.setattr(order_write, "_seckill_order_tx", flaky)
    outcomes = []
    for user in buyers:
        try:
            outcomes.append(buy(activity, user).status)
        except (Unavailable, SoldOut) as exc:
            outcomes.append(exc.code)
    assert outcomes.count(201) == 10 and "unavailable" in outcomes
    assert_invariants(activity, expect_sold=10)
    state = sale_state(activity)
    assert state["open_reservations"] == 0 and state["redis_remaining"] == 0


def test_redis_flushed_mid_sale_rewarms_from_the_db_without_overselling():
    activity = create_sale(stock=10)
    buyers = create_customers(25)
    for user in buyers[:4]:
        buy(activity, user)
    stock.redis().flushdb()
    cache.clear()
    results = []
    for user in buyers[:4] + buyers[4:]:
        try:
            results.append(buy(activity, user).status)
        except (LimitReached, SoldOut) as exc:
            results.append(exc.code)
    assert results[:4] == ["limit_reached"] * 4  # the per-customer counts came back from the DB
    assert results.count(201) == 6
    assert_invariants(activity, expect_sold=10)


def test_rewarm_counts_remaining_as_total_minus_live_orders(customer, other_customer):
    activity = create_sale(stock=10)
    kept = buy(activity, customer).order
    dropped = buy(activity, other_customer).order
    order_services.order_cancel(order=dropped)
    stock.redis().flushdb()
    services.activity_warm(activity_id=activity.pk)
    assert stock.remaining(activity.pk) == 9 and kept.status == Order.Status.PENDING_PAYMENT
    assert stock.held_by(activity.pk, customer.pk) == 1 and stock.held_by(activity.pk, other_customer.pk) == 0


def test_a_stale_lock_holders_write_is_fenced_and_its_unit_comes_back(customer, monkeypatch):
    """The incident of docs/architecture.md: a holder paused past its lease writes after a newer holder did."""
    activity = create_sale(stock=5, limit=2)
    name = keys.customer_lock_name(activity.pk, customer.pk)
    original_acquire = RedisLock.acquire

    def paused_acquire(self, *args, **kwargs):
        acquired = original_acquire(self, *args, **kwargs)
        if self.name == name:
            # While "paused", another request of the customer takes the lock and writes.
            stock.redis().delete(self.key)
            monkeypatch.setattr(RedisLock, "acquire", original_acquire)
            buy(activity, customer)
        return acquired

    monkeypatch.setattr(RedisLock, "acquire", paused_acquire)
    with pytest.raises(Busy):
        buy(activity, customer)
    assert Order.objects.count() == 1
    assert_invariants(activity, expect_sold=1)
    assert stock.remaining(activity.pk) == 4


def test_the_database_refuses_over_limit_even_when_redis_forgot_the_customer(customer):
    activity = create_sale(stock=5, limit=1)
    buy(activity, customer)
    stock.redis().hdel(keys.users(activity.pk), customer.pk)  # Redis lost the count
    with pytest.raises(LimitReached):
        buy(activity, customer)
    assert_invariants(activity, expect_sold=1)
    assert stock.remaining(activity.pk) == 4  # the refused reservation went back


def test_the_database_refuses_an_oversell_when_redis_is_ahead(customer, other_customer):
    activity = create_sale(stock=1)
    buy(activity, customer)
    stock.redis().set(keys.stock(activity.pk), 5)  # Redis believes there are more units
    with pytest.raises(SoldOut):
        buy(activity, other_customer)
    state = sale_state(activity)
    assert state["sold"] == 1 and state["db_available"] == 0 and SeckillOrder.objects.count() == 1
    assert stock.remaining(activity.pk) == 4  # not put back: Redis was ahead, not short


def test_expiry_returns_the_unit_to_db_and_redis_once(customer):
    activity = create_sale(stock=3)
    order = buy(activity, customer).order
    later = order.expires_at + timedelta(seconds=1)
    order_services.order_expire(order=order, now=later)
    with pytest.raises(InvalidState):
        order_services.order_expire(order=order, now=later)
    assert_invariants(activity, expect_sold=0)
    assert stock.remaining(activity.pk) == 3 and stock.held_by(activity.pk, customer.pk) == 0
    assert SeckillQuota.objects.get(activity=activity, user=customer).units_held == 0


def test_paying_an_expired_flash_sale_order_is_refused(customer):
    activity = create_sale(stock=3)
    order = buy(activity, customer).order
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(order_services.PaymentWindowClosed):
        order_services.order_pay(order=order)
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED
    assert_invariants(activity, expect_sold=0)
    assert stock.remaining(activity.pk) == 3


@pytest.mark.django_db(transaction=True)
def test_payment_racing_expiry_thirty_times_has_one_outcome_and_returns_the_unit_once():
    activity = create_sale(stock=40)
    buyers = create_customers(30, prefix="racer")
    outcomes = []
    for user in buyers:
        order = buy(activity, user).order
        # The payment lands before the deadline, the expiry runs as of the deadline: both
        # are valid alone, so only the version check decides which one happens.
        deadline = timezone.now() + timedelta(milliseconds=500)
        Order.objects.filter(pk=order.pk).update(expires_at=deadline)

        def act(i, order=order, deadline=deadline):
            if i == 0:
                return order_services.order_pay(order=Order.objects.get(pk=order.pk))
            return order_services.order_expire(order=Order(pk=order.pk), now=deadline + timedelta(milliseconds=1))

        results = run_concurrently(act, 2)
        winners = [r for r in results if isinstance(r, Order)]
        assert len(winners) == 1, results
        outcomes.append(Order.objects.get(pk=order.pk).status)
        state = assert_invariants(activity)
        assert state["sold"] == outcomes.count("paid")
    assert set(outcomes) <= {"paid", "expired"} and len(outcomes) == 30
    assert stock.remaining(activity.pk) == 40 - outcomes.count("paid")


def test_async_mode_accepts_with_a_ticket_and_writes_the_order_once(settings, customer):
    settings.SECKILL_ORDER_MODE = "async"
    activity = create_sale(stock=5)
    outcome = buy(activity, customer)
    assert outcome.status == 202 and outcome.ticket_id.startswith(f"{activity.pk}-")
    ticket = SeckillTicket.objects.get()
    assert ticket.status == SeckillTicket.Status.DONE and ticket.order is not None  # eager Celery in tests
    services.ticket_fulfil(ticket_id=ticket.pk)  # a redelivered task
    services.ticket_fulfil(ticket_id=ticket.pk)
    assert Order.objects.count() == 1
    assert_invariants(activity, expect_sold=1)


def test_async_ticket_whose_message_was_lost_is_redriven(settings, customer, monkeypatch):
    from seckill import tasks

    settings.SECKILL_ORDER_MODE = "async"
    activity = create_sale(stock=5)
    monkeypatch.setattr(tasks.fulfil_ticket, "delay", lambda *a, **k: None)  # the broker lost it
    buy(activity, customer)
    ticket = SeckillTicket.objects.get()
    assert ticket.status == SeckillTicket.Status.PENDING and not Order.objects.exists()
    assert_invariants(activity)  # the pending ticket's unit counts as an open reservation
    SeckillTicket.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    monkeypatch.undo()
    assert tasks.redrive_stuck_tickets() == 1
    assert SeckillTicket.objects.get().status == SeckillTicket.Status.DONE
    assert_invariants(activity, expect_sold=1)


def test_async_ticket_refused_by_the_db_fails_and_gives_the_unit_back(settings, customer, monkeypatch):
    from seckill import tasks

    settings.SECKILL_ORDER_MODE = "async"
    activity = create_sale(stock=5, limit=1)
    SeckillQuota.objects.create(activity=activity, user=customer, units_held=1, unit_limit=1)  # DB says: full
    monkeypatch.setattr(tasks.fulfil_ticket, "delay", lambda *a, **k: None)
    buy(activity, customer)
    ticket = services.ticket_fulfil(ticket_id=SeckillTicket.objects.get().pk)
    assert (ticket.status, ticket.error_code) == ("failed", "limit_reached")
    assert stock.remaining(activity.pk) == 5 and not Order.objects.exists()


def test_stranded_reservation_goes_back_on_sale_after_the_grace_period(customer):
    activity = create_sale(stock=2)
    rid = "a" * 32
    stock.reserve(activity_id=activity.pk, user_id=customer.pk, quantity=1, reservation_id=rid)  # then "crashed"
    assert services.release_stranded_reservations(activity_id=activity.pk) == []  # still inside the grace period
    assert services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0) == [rid]
    assert stock.remaining(activity.pk) == 2 and stock.held_by(activity.pk, customer.pk) == 0
    assert buy(activity, customer).order is not None


def test_settled_reservations_are_not_mistaken_for_stranded(customer):
    activity = create_sale(stock=2)
    buy(activity, customer)
    assert services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0) == []
    assert stock.remaining(activity.pk) == 1
    assert_invariants(activity, expect_sold=1)


def test_redis_down_is_a_clear_503_and_writes_nothing(settings, customer):
    activity = create_sale(stock=2)
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = caches
    with pytest.raises(Unavailable):
        buy(activity, customer)
    assert not Order.objects.exists()


def test_resync_counts_a_purchase_written_between_its_db_read_and_its_redis_write(
    customer, other_customer, monkeypatch
):
    """Staff press "re-sync" (or `reconcile --fix` runs) while a customer buys."""
    activity = create_sale(stock=5, limit=2)
    buy(activity, customer)
    real_resync = stock.resync

    def purchase_lands_in_between(**kwargs):
        buy(activity, other_customer)  # reserved and committed after the DB snapshot was read
        return real_resync(**kwargs)

    monkeypatch.setattr(stock, "resync", purchase_lands_in_between)
    assert services.activity_resync(activity_id=activity.pk)
    assert stock.remaining(activity.pk) == 3
    assert stock.held_by(activity.pk, other_customer.pk) == 1
    assert_invariants(activity, expect_sold=2)


def test_resync_counts_a_reservation_still_in_flight(customer, monkeypatch):
    activity = create_sale(stock=5)
    real_resync = stock.resync

    def reservation_in_flight(**kwargs):
        stock.reserve(activity_id=activity.pk, user_id=customer.pk, quantity=1, reservation_id="f" * 32)
        return real_resync(**kwargs)

    monkeypatch.setattr(stock, "resync", reservation_in_flight)
    services.activity_resync(activity_id=activity.pk)
    assert stock.remaining(activity.pk) == 4 and stock.held_by(activity.pk, customer.pk) == 1
    assert_invariants(activity, expect_sold=0)  # I5 counts the open reservation

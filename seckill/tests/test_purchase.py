"""The purchase service (seckill/purchase.py) with the real Redis and MariaDB."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from core.errors import InvalidState
from orders import services as order_services
from orders.models import Order
from orders.pending import pending_order_get
from seckill import cache, intents, keys, purchase, services, stock, writer
from seckill.errors import Ended, LimitReached, NotFound, NotStarted, SoldOut, Unavailable
from seckill.models import SeckillOrder, SeckillQuota, SeckillRefusal
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
    assert link.activity_id == activity.pk and len(link.reservation_id) == 32
    assert stock.redis().xlen(keys.intents(activity.pk)) == 0  # the writer settled its intent
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
    stock.redis().hdel(keys.answers(activity.pk), keys.answer_field(customer.pk, "tap-1"))
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


def test_a_database_outage_leaves_the_intents_waiting_and_a_later_run_writes_them_all(settings, monkeypatch):
    """Nothing is lost to a DB failure: the intents stay in the stream until a writer commits them."""
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=10)
    buyers = create_customers(12)
    real = order_write._batch_tx

    def down(**kwargs):
        raise OperationalError(2013, "Lost connection to MySQL server during query")

    monkeypatch.setattr(order_write, "_batch_tx", down)
    outcomes = []
    for user in buyers:
        try:
            outcomes.append(buy(activity, user).status)
        except SoldOut as exc:
            outcomes.append(exc.code)
    assert outcomes == [202] * 10 + ["sold_out"] * 2
    with pytest.raises(OperationalError):
        writer.drain(activity.pk)
    assert not Order.objects.exists() and stock.redis().xlen(keys.intents(activity.pk)) == 10
    monkeypatch.setattr(order_write, "_batch_tx", real)
    assert intents.claim_stale(activity.pk, consumer="next", count=50, min_idle_ms=0)  # the failed run's entries
    writer.write_batch(activity.pk, intents.claim_stale(activity.pk, consumer="next", count=50, min_idle_ms=0))
    assert Order.objects.count() == 10 and stock.redis().xlen(keys.intents(activity.pk)) == 0
    assert_invariants(activity, expect_sold=10)


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


def test_one_customers_parallel_requests_are_put_in_order_by_the_script(settings, customer):
    """No customer lock: purchase.lua alone serialises a customer's tabs and retries."""
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=20, limit=2)
    results = run_concurrently(lambda i: buy(activity, customer), 12)
    statuses = [r.status if not isinstance(r, Exception) else r.code for r in results]
    assert statuses.count(201) == 2 and statuses.count("limit_reached") == 10, statuses
    assert_invariants(activity, expect_sold=2)


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


def test_reserved_mode_answers_confirming_and_the_writer_writes_the_order_once(settings, customer):
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5)
    outcome = buy(activity, customer, key="r-1")
    assert outcome.status == 202 and outcome.order is None and outcome.pending.status == "confirming"
    assert not Order.objects.exists() and stock.remaining(activity.pk) == 4
    assert pending_order_get(user=customer, number=outcome.number).status == "confirming"
    assert buy(activity, customer, key="r-1").replayed  # the same key while it is being written
    assert writer.drain(activity.pk) == 1
    assert writer.drain(activity.pk) == 0  # nothing left, nothing written twice
    order = Order.objects.get()
    assert order.number == outcome.number and pending_order_get(user=customer, number=order.number) is None
    assert buy(activity, customer, key="r-1").order == order
    assert_invariants(activity, expect_sold=1)


def test_an_intent_the_database_refuses_is_shown_to_its_customer_and_its_unit_comes_back(settings, customer):
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5, limit=1)
    SeckillQuota.objects.create(activity=activity, user=customer, units_held=1, unit_limit=1)  # DB says: full
    outcome = buy(activity, customer)
    writer.drain(activity.pk)
    assert not Order.objects.exists() and stock.remaining(activity.pk) == 5
    refusal = SeckillRefusal.objects.get()
    assert (refusal.order_number, refusal.code) == (outcome.number, "limit_reached")
    shown = pending_order_get(user=customer, number=outcome.number)
    assert shown.status == "refused" and "limit" in shown.detail


def test_committed_mode_answers_confirming_when_the_writer_is_slow(settings, customer):
    settings.SECKILL_WRITER_EAGER = False  # no writer at all
    settings.SECKILL_ACK_WAIT_SECONDS = 0.2
    activity = create_sale(stock=5)
    outcome = buy(activity, customer)
    assert outcome.status == 202 and outcome.pending.number.startswith("FS-")
    writer.drain(activity.pk)
    assert Order.objects.get().number == outcome.number
    assert_invariants(activity, expect_sold=1)


def test_committed_mode_answers_503_not_confirming_when_redis_lost_the_intent_during_the_wait(settings, customer):
    """Redis restarted empty after the script ran: the wait listens on a server without the
    intent, which is gone. A 202 would promise an order that never comes; the answer is 503,
    nothing is sold, and the customer's next try buys normally once the sale is warm again."""
    settings.SECKILL_WRITER_EAGER = False  # no writer: the wait runs out
    settings.SECKILL_ACK_WAIT_SECONDS = 0.6
    activity = create_sale(stock=5)
    flusher = threading.Timer(0.2, lambda: stock.redis().flushdb())
    flusher.start()
    try:
        with pytest.raises(Unavailable, match="could not be confirmed"):
            buy(activity, customer)
    finally:
        flusher.join()
    writer.drain(activity.pk)
    assert not Order.objects.exists() and not SeckillOrder.objects.exists()
    settings.SECKILL_WRITER_EAGER = True
    assert buy(activity, customer).order is not None  # warmed again from the database
    assert_invariants(activity, expect_sold=1)


def test_a_returned_unit_clears_every_sold_out_flag_at_once(customer, other_customer):
    """The units-back message, not the flag's expiry: the default recheck interval stays in force."""
    activity = create_sale(stock=1)
    first = buy(activity, customer).order
    with pytest.raises(SoldOut):
        buy(activity, other_customer)
    assert cache.is_sold_out(activity.pk)
    order_services.order_cancel(order=first)  # restock.lua publishes on the units-back channel
    deadline = time.monotonic() + 0.5
    while cache.is_sold_out(activity.pk) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not cache.is_sold_out(activity.pk)
    assert buy(activity, other_customer).order is not None
    assert_invariants(activity, expect_sold=1)


def test_stranded_reservation_goes_back_on_sale_after_the_grace_period(customer):
    activity = create_sale(stock=2)
    rid = "a" * 32
    sale = cache.sale_info(activity.pk)
    stock.reserve(sale=sale, user_id=customer.pk, quantity=1, reservation_id=rid, number="FS-0000-0000-0001")
    assert services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0) == []  # its intent waits
    stock.redis().delete(keys.intents(activity.pk))  # the intent is lost (a Redis that kept nothing on disk)
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


def test_an_order_committed_while_the_sweep_runs_is_not_given_back(settings, customer, monkeypatch):
    """The writer commits and settles an old intent just before the sweep reads the stream
    (read orders first, stream second, and this unit would be given back: sold twice)."""
    settings.SECKILL_ACK = "reserved"  # the purchase leaves its intent for the writer
    activity = create_sale(stock=2)
    buy(activity, customer)
    read_stream = intents.waiting_reservations

    def writer_then_stream(activity_id, *args, **kwargs):
        writer.drain(activity_id)  # COMMIT, XACK, XDEL: the intent leaves the stream
        return read_stream(activity_id, *args, **kwargs)

    monkeypatch.setattr(intents, "waiting_reservations", writer_then_stream)
    assert services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0) == []
    assert Order.objects.count() == 1 and stock.remaining(activity.pk) == 1  # the written unit stays sold
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
        sale = cache.sale_info(activity.pk)
        stock.reserve(sale=sale, user_id=customer.pk, quantity=1, reservation_id="f" * 32, number="FS-0000-0000-0002")
        return real_resync(**kwargs)

    monkeypatch.setattr(stock, "resync", reservation_in_flight)
    services.activity_resync(activity_id=activity.pk)
    assert stock.remaining(activity.pk) == 4 and stock.held_by(activity.pk, customer.pk) == 1
    assert_invariants(activity, expect_sold=0)  # I5 counts the open reservation


def test_a_key_whose_answer_redis_forgot_keeps_answering_with_its_first_order(customer):
    """Found by the state machine: the second order under a key is refused by the database
    (unique key per customer), and every later retry must still get the first order."""
    activity = create_sale(stock=5, limit=2)
    first = buy(activity, customer, key="tap-1").order
    order_services.order_cancel(order=first)
    stock.redis().hdel(keys.answers(activity.pk), keys.answer_field(customer.pk, "tap-1"))  # Redis forgot
    again = buy(activity, customer, quantity=2, key="tap-1")
    assert again.replayed and again.order.number == first.number
    once_more = buy(activity, customer, key="tap-1")  # Redis now remembers the refused intent's number
    assert once_more.replayed and once_more.order.number == first.number
    assert Order.objects.count() == 1
    assert_invariants(activity, expect_sold=0)

"""The order writer (seckill/writer.py) on the real MariaDB and Redis.

Crashes are reproduced by the state they leave: a writer that dies before COMMIT leaves
its entries pending and nothing written; one that dies between COMMIT and XACK leaves
them pending with their orders written. Another writer then claims them (XAUTOCLAIM).
"""

import threading

import pytest

from orders.models import Order
from seckill import intents, keys, stock, writer
from seckill.models import SeckillOrder, SeckillQuota, SeckillRefusal
from seckill.purchase import purchase
from seckill.services import order_write
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def reserved_ack(settings):
    """Purchases are accepted and left for the writer under test (no inline writer run)."""
    settings.SECKILL_ACK = "reserved"
    settings.SECKILL_RATE_LIMIT_PER_IP = 0


def accept(activity, users, quantity=1):
    return [purchase(activity_id=activity.pk, user=u, quantity=quantity).number for u in users]


def accept_waiting(settings, activity, users):
    """Purchases whose requests wait for the writer's answer (SECKILL_ACK=committed), left
    for the writer under test: each request gives up at once and answers "confirming"."""
    settings.SECKILL_ACK, settings.SECKILL_WRITER_EAGER, settings.SECKILL_ACK_WAIT_SECONDS = "committed", False, 0.01
    numbers = accept(activity, users)
    # The writer pushes an answer only within the wait bound after the reservation: make
    # it wide, so a slow machine between these purchases and the settle changes nothing.
    settings.SECKILL_ACK, settings.SECKILL_ACK_WAIT_SECONDS = "reserved", 60
    return numbers


def answer_keys(activity):
    return list(stock.redis().scan_iter(match=keys.written(activity.pk, "*")))


def waiting(activity):
    return stock.redis().xlen(keys.intents(activity.pk))


@pytest.mark.parametrize("count", [1, 2, 500])
def test_a_batch_of_any_size_becomes_exactly_its_orders(count):
    activity = create_sale(stock=count)
    numbers = accept(activity, create_customers(count))
    batch = intents.read_new(activity.pk, consumer="w1", count=500)
    assert len(batch) == count
    assert writer.write_batch(activity.pk, batch) == count
    assert sorted(Order.objects.values_list("number", flat=True)) == sorted(numbers)
    assert waiting(activity) == 0 and not stock.redis().xpending(keys.intents(activity.pk), intents.GROUP)["pending"]
    assert answer_keys(activity) == []  # SECKILL_ACK=reserved: no request waits, no answer is pushed
    assert_invariants(activity, expect_sold=count)


def test_a_poisoned_intent_is_refused_alone_and_the_others_are_written(settings):
    activity = create_sale(stock=10, limit=1)
    users = create_customers(6)
    numbers = accept_waiting(settings, activity, users)
    poisoned = users[3]
    SeckillQuota.objects.create(activity=activity, user=poisoned, units_held=1, unit_limit=1)  # the DB says: full
    assert writer.drain(activity.pk) == 6
    written = set(Order.objects.values_list("number", flat=True))
    assert written == set(numbers) - {numbers[3]}
    refusal = SeckillRefusal.objects.get()
    assert (refusal.order_number, refusal.user, refusal.code) == (numbers[3], poisoned, "limit_reached")
    assert stock.remaining(activity.pk) == 5  # the refused unit is back on sale
    outcome = stock.redis().lpop(keys.written(activity.pk, refusal.reservation_id))
    assert b"limit_reached" in outcome  # what a waiting request would have been told
    SeckillQuota.objects.filter(user=poisoned).delete()
    assert_invariants(activity, expect_sold=5)


def test_a_writer_dead_before_commit_loses_nothing():
    activity = create_sale(stock=20)
    numbers = accept(activity, create_customers(20))
    taken = intents.read_new(activity.pk, consumer="dead", count=500)  # read, then killed: nothing written
    assert len(taken) == 20 and not Order.objects.exists()
    assert intents.read_new(activity.pk, consumer="alive", count=500) == []  # pending, not new
    claimed = intents.claim_stale(activity.pk, consumer="alive", count=500, min_idle_ms=0)
    assert writer.write_batch(activity.pk, claimed) == 20
    assert sorted(Order.objects.values_list("number", flat=True)) == sorted(numbers)
    assert_invariants(activity, expect_sold=20)


def test_a_writer_dead_between_commit_and_ack_duplicates_nothing(settings):
    activity = create_sale(stock=20)
    numbers = accept_waiting(settings, activity, create_customers(20))
    taken = intents.read_new(activity.pk, consumer="dead", count=500)
    order_write.intents_write(sale=writer.cache.sale_info(activity.pk), intents=taken)  # COMMIT, then killed
    assert Order.objects.count() == 20 and waiting(activity) == 20
    claimed = intents.claim_stale(activity.pk, consumer="alive", count=500, min_idle_ms=0)
    assert writer.write_batch(activity.pk, claimed) == 20  # found written: settled again, not rewritten
    assert Order.objects.count() == 20 and SeckillOrder.objects.count() == 20
    assert sorted(Order.objects.values_list("number", flat=True)) == sorted(numbers)
    assert waiting(activity) == 0
    for intent in claimed:  # each waiting request still gets its order
        assert b'"written"' in stock.redis().lpop(keys.written(activity.pk, intent.reservation_id))
    assert_invariants(activity, expect_sold=20)


def test_two_writers_on_one_stream_never_write_an_intent_twice():
    activity = create_sale(stock=600, limit=1)
    numbers = accept(activity, create_customers(600))
    stop = threading.Event()
    errors = []

    def run(name):
        try:
            loop = writer.Writer(consumer=name, max_batch=50, block_ms=20, claim_idle_ms=0)  # claim eagerly: races
            while not stop.is_set() and waiting(activity):
                loop.tick()
        except Exception as exc:
            errors.append(exc)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    assert not errors, errors
    assert waiting(activity) == 0
    assert Order.objects.count() == SeckillOrder.objects.count() == 600
    assert sorted(Order.objects.values_list("number", flat=True)) == sorted(numbers)
    assert_invariants(activity, expect_sold=600)


def test_the_writer_lag_counts_what_waits_and_how_old_it_is():
    activity = create_sale(stock=5)
    accept(activity, create_customers(3))
    lag = intents.lag(activity.pk)
    assert lag.waiting == 3 and 0 <= lag.oldest_age_s < 10
    writer.drain(activity.pk)
    assert intents.lag(activity.pk) == intents.Lag(0, 0.0)


def test_each_order_of_a_written_batch_gets_one_confirmation_email():
    from django.core import mail

    activity = create_sale(stock=5)
    users = create_customers(3)
    for user in users:
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    numbers = accept(activity, users)
    mail.outbox.clear()
    writer.drain(activity.pk)  # one batch of three, one COMMIT: the e-mails are queued by it
    writer.drain(activity.pk)  # nothing left: nothing sent again
    assert sorted(m.subject.split()[-1] for m in mail.outbox) == sorted(numbers)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)


def test_no_answer_is_pushed_for_a_request_that_stopped_waiting(settings):
    activity = create_sale(stock=2)
    accept_waiting(settings, activity, create_customers(2))
    settings.SECKILL_ACK_WAIT_SECONDS = 0  # every request gave up long ago (the window is then 1 s)
    time_now_ms = stock.redis().time()
    batch = intents.read_new(activity.pk, consumer="w1", count=10)
    assert all(i.waits for i in batch)
    old = [intents.Intent(**{**i.__dict__, "reserved_ms": time_now_ms[0] * 1000 - 5_000}) for i in batch]
    assert writer.write_batch(activity.pk, old) == 2
    assert answer_keys(activity) == [] and waiting(activity) == 0
    assert_invariants(activity, expect_sold=2)

"""purchase.lua and its companions against the real Redis, without the web layer."""

import time
import uuid
from collections import Counter

import pytest

from seckill import keys, services, stock
from seckill.tests.conftest import create_sale, lua_reserve
from shop.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    settings.SECKILL_RATE_LIMIT_PER_IP = 0


def reserve(activity, user_id, quantity=1, ip=None):
    return lua_reserve(activity, user_id=user_id, quantity=quantity, client_ip=ip)


@pytest.mark.django_db(transaction=True)
def test_two_thousand_concurrent_calls_from_500_customers_sell_exactly_the_stock():
    activity = create_sale(stock=100, limit=2)

    def worker(thread):
        return [reserve(activity, (thread * 40 + j) % 500 + 1) for j in range(40)]

    results = [r for batch in run_concurrently(worker, 50) for r in batch]
    assert len(results) == 2000
    wins = [r for r in results if r.outcome == "ok"]
    assert len(wins) == 100
    assert all(r.value >= 0 for r in wins)  # "units left" after each win never went below zero
    assert sorted(r.value for r in wins) == list(range(100))  # each count from 99 down to 0, once
    assert {r.outcome for r in results} <= {"ok", "sold_out", "limit_reached"}
    assert stock.remaining(activity.pk) == 0
    held = {int(k): int(v) for k, v in stock.redis().hgetall(keys.users(activity.pk)).items()}
    assert sum(held.values()) == 100 and max(held.values()) <= 2
    assert len(list(stock.reservations(activity.pk))) == 100


def test_limit_counts_units_not_requests():
    activity = create_sale(stock=10, limit=2)
    assert reserve(activity, 1, 2).outcome == "ok"
    refused = reserve(activity, 1, 1)
    assert (refused.outcome, refused.value) == ("limit_reached", 2)
    assert stock.remaining(activity.pk) == 8


def test_asking_for_more_than_is_left_reports_what_is_left():
    activity = create_sale(stock=3, limit=5)
    assert reserve(activity, 1, 2).outcome == "ok"
    short = reserve(activity, 2, 2)
    assert (short.outcome, short.value) == ("insufficient", 1)
    assert reserve(activity, 3, 1).outcome == "ok"
    assert reserve(activity, 4, 1).outcome == "sold_out"
    assert stock.remaining(activity.pk) == 0


def test_window_uses_the_redis_clock():
    upcoming = create_sale(stock=5, starts_in=30)
    result = reserve(upcoming, 1)
    assert result.outcome == "not_started" and 25_000 < result.value <= 30_000
    ended = create_sale(stock=5, starts_in=-120)
    services.activity_end_now(activity_id=ended.pk)
    assert reserve(ended, 1).outcome == "ended"
    assert stock.remaining(upcoming.pk) == 5 and stock.remaining(ended.pk) == 5


def test_missing_keys_fail_closed():
    activity = create_sale(stock=5)
    stock.redis().delete(keys.stock(activity.pk))
    assert reserve(activity, 1).outcome == "unavailable"
    stock.redis().delete(*keys.all_keys(activity.pk))
    assert reserve(activity, 1).outcome == "unavailable"
    assert stock.remaining(activity.pk) is None  # nothing was created by the refusal


def test_rate_limits_per_customer_and_per_ip(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 3
    settings.SECKILL_RATE_LIMIT_PER_IP = 5
    activity = create_sale(stock=100, limit=100)
    outcomes = [reserve(activity, 1, ip="10.0.0.1").outcome for _ in range(4)]
    assert outcomes == ["ok", "ok", "ok", "rate_limited"]
    outcomes = [reserve(activity, uid, ip="10.0.0.1").outcome for uid in (2, 3, 4)]
    # The refused 4th call stopped at the customer rule, so the IP had used 3 of its 5.
    assert outcomes == ["ok", "ok", "rate_limited"]
    assert reserve(activity, 5, ip="10.0.0.2").outcome == "ok"
    assert stock.remaining(activity.pk) == 100 - 6


def test_rate_limit_window_expires(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 1
    settings.SECKILL_RATE_LIMIT_WINDOW_MS = 200
    activity = create_sale(stock=10, limit=10)
    assert reserve(activity, 1).outcome == "ok"
    assert reserve(activity, 1).outcome == "rate_limited"
    time.sleep(0.25)
    assert reserve(activity, 1).outcome == "ok"


def test_give_back_returns_units_once_and_can_drop_them():
    activity = create_sale(stock=5, limit=2)
    rid = uuid.uuid4().hex
    assert lua_reserve(activity, user_id=7, quantity=2, reservation_id=rid).outcome == "ok"
    assert stock.give_back(activity_id=activity.pk, reservation_id=rid) == 2
    assert stock.give_back(activity_id=activity.pk, reservation_id=rid) == 0
    assert stock.remaining(activity.pk) == 5 and stock.held_by(activity.pk, 7) == 0
    rid2 = uuid.uuid4().hex
    lua_reserve(activity, user_id=7, quantity=1, reservation_id=rid2)
    stock.give_back(activity_id=activity.pk, reservation_id=rid2, back_on_sale=False)
    assert stock.remaining(activity.pk) == 4 and stock.held_by(activity.pk, 7) == 0


def test_give_back_on_a_wiped_redis_creates_nothing():
    activity = create_sale(stock=5)
    rid = uuid.uuid4().hex
    lua_reserve(activity, user_id=7, quantity=1, reservation_id=rid)
    stock.redis().delete(keys.stock(activity.pk))
    stock.give_back(activity_id=activity.pk, reservation_id=rid)
    assert stock.remaining(activity.pk) is None


def test_restock_happens_once_per_order():
    activity = create_sale(stock=5)
    rid = uuid.uuid4().hex
    lua_reserve(activity, user_id=7, quantity=1, reservation_id=rid)
    args = {"activity_id": activity.pk, "order_number": "FS-X", "user_id": 7, "quantity": 1, "reservation_id": rid}
    assert stock.restock(**args) == 1
    assert stock.restock(**args) == 0
    assert stock.remaining(activity.pk) == 5 and stock.held_by(activity.pk, 7) == 0


def test_warm_twice_never_resets_live_counters():
    activity = create_sale(stock=5)
    reserve(activity, 1)
    assert stock.warm(activity=activity, remaining=5, holders=[]) is False
    assert stock.remaining(activity.pk) == 4 and stock.held_by(activity.pk, 1) == 1


def test_concurrent_give_back_of_one_reservation_returns_it_once():
    activity = create_sale(stock=3)
    rid = uuid.uuid4().hex
    lua_reserve(activity, user_id=9, quantity=1, reservation_id=rid)
    results = run_concurrently(lambda i: stock.give_back(activity_id=activity.pk, reservation_id=rid), 20)
    assert Counter(results) == Counter({1: 1, 0: 19})
    assert stock.remaining(activity.pk) == 3

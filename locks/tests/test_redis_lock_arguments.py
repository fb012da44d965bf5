"""The Redis lock's defects found by using it as a user of redis-py's Lock would; each test failed before its fix."""

import contextlib
import math
import threading
import time

import pytest
from django.db import transaction

from locks import RedisLock, StaleTokenError, TokenNotIssuedError, fence_check
from locks.mysql import connection_database, open_dedicated_connection, server_lock_name

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf, None, "5"])
def test_a_ttl_that_is_not_a_positive_finite_number_is_refused_at_construction(seconds):
    with pytest.raises(ValueError, match="ttl"):
        RedisLock("args:ttl", ttl=seconds)


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf])
def test_extend_to_a_non_positive_or_non_finite_lease_is_refused_and_leaves_the_lease(redis_db, seconds):
    lock = RedisLock("args:extend", ttl=5)
    assert lock.acquire(blocking=False)
    with pytest.raises(ValueError, match="ttl"):
        lock.extend(seconds)
    time.sleep(0.05)  # extend(0) used to set a 1 ms lease: the key was gone by now
    assert lock.owned() and 4000 < redis_db.pttl(lock.key) <= 5000
    lock.release()


@pytest.mark.parametrize("timeout", [-1, -0.001, math.nan])
def test_a_negative_or_nan_timeout_is_refused_instead_of_read_as_try_once(timeout):
    lock = RedisLock("args:timeout", ttl=5)
    with pytest.raises(ValueError, match="timeout"):
        lock.acquire(timeout=timeout)
    with pytest.raises(ValueError, match="blocking_timeout"):
        RedisLock("args:timeout", blocking_timeout=timeout)


def test_acquire_without_arguments_honours_the_constructors_blocking_timeout():
    holder = RedisLock("args:wait", ttl=3)
    assert holder.acquire()
    waiter = RedisLock("args:wait", ttl=3, blocking_timeout=0.4)
    started = time.monotonic()
    assert waiter.acquire() is False
    waited = time.monotonic() - started
    assert 0.4 <= waited < 1.5, f"waited {waited:.2f}s: the holder's whole lease instead of blocking_timeout"
    assert RedisLock("args:wait", blocking=False).acquire() is False  # blocking=False: one attempt
    holder.release()


def test_the_watchdog_renews_to_the_lease_extend_asked_for_not_back_to_ttl(redis_db):
    lock = RedisLock("args:renew", ttl=1.5, auto_renew=True)
    assert lock.acquire()
    lock.extend(60)
    time.sleep(1.2)  # more than two renewal periods of the 1.5 s lease
    assert redis_db.pttl(lock.key) > 55_000, "a renewal cut the 60 s lease back to 1.5 s"
    lock.release()


def test_a_lock_name_too_long_for_the_fence_table_is_refused_even_inside_a_fence_scope():
    with pytest.raises(ValueError, match="255"):
        RedisLock("customer:" + "x" * 300, fence_scope="sale:1")
    with pytest.raises(ValueError, match="255"):
        RedisLock("customer:1", fence_scope="sale:" + "x" * 300)
    RedisLock("customer:" + "x" * 300, fence_scope="sale:1", fencing=False)  # no fence row: no limit


@pytest.fixture
def seeding_turn_taken(db):
    """Another process is (slowly) seeding fence counters: it holds the seeding turn of 'args:seed'."""
    connection = open_dedicated_connection()
    turn = server_lock_name(connection_database(), "fence-seed:args:seed")
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", [turn])
        assert cursor.fetchone()[0] == 1
    yield connection
    with contextlib.suppress(Exception):
        connection.close()


def test_a_non_blocking_acquire_of_a_new_name_never_waits_on_fence_seeding(seeding_turn_taken):
    lock = RedisLock("args:seed", ttl=5)
    started = time.monotonic()
    assert lock.acquire(blocking=False)
    took = time.monotonic() - started
    assert took < 1.0, f"acquire(blocking=False) took {took:.1f}s waiting for the seeding turn (up to 10 s before)"

    seeding_turn_taken.close()  # the other seeder is done; the token is issued on first read
    token = lock.fencing_token
    assert token is not None and token > 0
    with transaction.atomic():
        fence_check(lock.fence_resource, token)
    lock.release()
    assert lock.fencing_token == token  # kept after release, for the write that follows


def test_a_holder_that_lost_its_lock_before_its_pending_token_was_issued_gets_no_token(redis_db):
    stale = RedisLock("args:pending", ttl=5)
    assert stale.acquire(blocking=False)  # first use of the name: the token is pending
    redis_db.delete(stale.key)  # its lease ran out
    newer = RedisLock("args:pending", ttl=5)
    assert newer.acquire(blocking=False)
    assert newer.fencing_token > 0
    with pytest.raises(TokenNotIssuedError) as refused:
        stale.fencing_token  # noqa: B018 - reading it is the test
    assert isinstance(refused.value, StaleTokenError)
    assert newer.owned()
    newer.release()


def test_a_blocking_acquire_with_a_bound_never_waits_for_seeding_past_it(seeding_turn_taken):
    results = []

    def take():
        lock = RedisLock("args:seed", ttl=5)
        started = time.monotonic()
        results.append((lock.acquire(timeout=0.3), time.monotonic() - started))
        lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(timeout=15)
    (got, took) = results[0]
    assert got and took < 1.0

"""A holder that outlives its lease: the seed incident, made harmless (tests 1, 8 and 9 of issue 3)."""

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from locks import LockNotOwnedError, RedisLock, fenced_update, lock_metrics, scripts
from locks.tests.incident_lock import IncidentLock
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAUSE_PAST_LEASE_S = 0.3  # the holder's "GC pause": longer than its 0.2 s lease


def test_1_holder_paused_past_its_ttl_cannot_release_the_next_lock_and_its_fenced_write_updates_nothing(redis_db):
    product = ProductFactory(stock=10)
    rows = Product.objects.filter(pk=product.pk)
    first = RedisLock("restock:1", ttl=0.2)
    assert first.acquire(blocking=False)
    first_token = first.fencing_token

    time.sleep(PAUSE_PAST_LEASE_S)

    second = RedisLock("restock:1", ttl=5)
    assert second.acquire(blocking=False)
    assert second.fencing_token > first_token
    assert fenced_update(rows, resource="restock:1", token=second.fencing_token, stock=7) == 1

    with pytest.raises(LockNotOwnedError):
        first.release()
    assert second.owned(), "the stale holder's release must leave the new holder's lock in place"

    stale_before = lock_metrics.value("stale_token_rejected_total", backend="redis", lock="restock")
    assert fenced_update(rows, resource="restock:1", token=first_token, stock=3) == 0
    product.refresh_from_db()
    assert product.stock == 7
    assert lock_metrics.value("stale_token_rejected_total", backend="redis", lock="restock") == stale_before + 1
    second.release()


def _lose_the_reply(monkeypatch):
    """Let the release script run on the server, then lose its answer on the way back."""
    real_release = scripts.RELEASE

    def release_then_drop_reply(client, keys, args):
        real_release(client, keys, args)
        raise RedisConnectionError("connection reset while reading the reply")

    monkeypatch.setattr(scripts, "RELEASE", release_then_drop_reply)


def test_8_release_retried_after_a_lost_reply_leaves_the_next_holders_lock_alone(monkeypatch):
    lock = RedisLock("settle:1", ttl=5)
    assert lock.acquire()
    _lose_the_reply(monkeypatch)
    with pytest.raises(RedisConnectionError):
        lock.release()
    monkeypatch.undo()

    next_holder = RedisLock("settle:1", ttl=5)
    assert next_holder.acquire(blocking=False), "the first release did land"
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert next_holder.owned()
    next_holder.release()


def test_8_release_retried_after_a_lost_reply_is_a_no_op_when_nobody_took_the_lock(monkeypatch, redis_db):
    lock = RedisLock("settle:2", ttl=5)
    assert lock.acquire()
    _lose_the_reply(monkeypatch)
    with pytest.raises(RedisConnectionError):
        lock.release()
    monkeypatch.undo()
    lock.release()  # no error: our first release is what removed the key
    assert not redis_db.exists(lock.key)


def test_8_a_second_release_after_a_confirmed_one_raises_and_sends_nothing():
    lock = RedisLock("settle:3", ttl=5)
    assert lock.acquire()
    lock.release()
    next_holder = RedisLock("settle:3", ttl=5)
    assert next_holder.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert next_holder.owned()
    next_holder.release()


def test_9_the_incidents_lock_deletes_the_next_holders_lock(redis_db):
    """The seed incident, reproduced: the same scenario as test 1 with SETNX + TTL and a plain DEL."""
    first = IncidentLock(redis_db, "incident:seckill:1", ttl=0.2)
    second = IncidentLock(redis_db, "incident:seckill:1", ttl=5)
    third = IncidentLock(redis_db, "incident:seckill:1", ttl=5)
    assert first.acquire()
    time.sleep(PAUSE_PAST_LEASE_S)
    assert second.acquire()
    first.release()  # the `finally: delete(key)` of the paused first request
    assert not redis_db.exists("incident:seckill:1"), "the first holder deleted the second holder's lock"
    assert third.acquire(), "so a third request runs while the second still thinks it holds the lock"

    # The same sequence with RedisLock keeps the second holder's lock and shuts the third out.
    safe_first, safe_second, safe_third = (RedisLock("incident:2", ttl=t) for t in (0.2, 5, 5))
    assert safe_first.acquire()
    time.sleep(PAUSE_PAST_LEASE_S)
    assert safe_second.acquire()
    with pytest.raises(LockNotOwnedError):
        safe_first.release()
    assert not safe_third.acquire(blocking=False)
    safe_second.release()

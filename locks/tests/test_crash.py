"""A holder killed without releasing: its lock frees at the end of its lease, not before (docs/locks.md)."""

import time

import pytest

from locks import MySQLNamedLock, RedisLock

pytestmark = pytest.mark.django_db(transaction=True)


def test_4_a_redis_lock_of_a_killed_holder_frees_at_its_ttl_not_before(redis_db, worker):
    holder = worker("hold-redis", "crash:redis", "1.0")
    assert holder.read_line()[0] == "acquired"
    lock = RedisLock("crash:redis", ttl=5)
    assert not lock.acquire(blocking=False)

    holder.kill()  # SIGKILL: no finally, no release, the watchdog dies with it
    killed_at = time.monotonic()
    lease_left_s = redis_db.pttl(lock.key) / 1000
    assert 0 < lease_left_s <= 1.0

    assert lock.acquire(blocking=True, timeout=3)
    waited = time.monotonic() - killed_at
    assert waited >= lease_left_s - 0.005, "the lock must not free before the lease ends"
    assert waited <= lease_left_s + 0.5, "a waiter must notice the expiry without a release signal"
    lock.release()


def test_4_a_mysql_named_lock_of_a_killed_holder_frees_at_once(worker):
    holder = worker("hold-mysql", "crash:mysql")
    assert holder.read_line() == ["acquired"]
    lock = MySQLNamedLock("crash:mysql")
    assert not lock.acquire(blocking=False)

    holder.kill()
    killed_at = time.monotonic()
    assert lock.acquire(blocking=True, timeout=2)
    assert time.monotonic() - killed_at < 0.5, "the server drops the lock with the dead connection"
    lock.release()

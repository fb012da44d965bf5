"""Watchdog renewal and lost-lock reporting (docs/locks.md, "What each one guarantees")."""

import logging
import threading
import time

import pytest

from locks import LockNotOwnedError, RedisLock, lock_metrics

pytestmark = pytest.mark.django_db(transaction=True)


def renewals(label):
    return lock_metrics.value("renewed_total", backend="redis", lock=label)


def watchdog_threads(name):
    return [t for t in threading.enumerate() if t.name == f"lock-watchdog:{name}"]


def test_2_watchdog_keeps_a_1s_lease_through_3s_of_work_and_stops_on_release(redis_db, worker):
    lock = RedisLock("report:daily", ttl=1.0, auto_renew=True)
    renewed_before = renewals("report")
    assert lock.acquire(blocking=False)
    started = time.monotonic()
    contender = worker("contend-redis", "report:daily", "1.0", "1.5")
    assert contender.read_line() == ["waiting"]

    contender_result = None
    while time.monotonic() - started < 3.0 or contender_result is None:
        time.sleep(0.25)  # a slice of the work
        assert lock.owned(), "the lease must never lapse while the work runs"
        if contender_result is None and contender.process.poll() is not None:
            contender_result = contender.read_line()
    assert contender_result[0] == "timed-out", "another process must not get the lock while it is renewed"
    assert renewals("report") - renewed_before >= 7  # every ~0.33 s for 3 s and more

    lock.release()
    for thread in watchdog_threads("report:daily"):
        thread.join(timeout=1)
    assert not watchdog_threads("report:daily")
    renewed_at_release = renewals("report")
    time.sleep(0.8)  # more than two renewal periods
    assert not redis_db.exists(lock.key), "a renewal after release must not bring the key back"
    assert renewals("report") == renewed_at_release


def test_3_on_lost_fires_before_the_lease_ends_when_redis_stops_answering(own_redis, caplog):
    client = own_redis.client(socket_timeout=0.2, socket_connect_timeout=0.2)
    lost_at = []
    fired = threading.Event()
    lost_before = lock_metrics.value("lost_total", backend="redis", lock="nightly")

    def on_lost(lock):
        lost_at.append(time.monotonic())
        fired.set()

    lock = RedisLock("nightly:reconcile", ttl=1.5, auto_renew=True, client=client, on_lost=on_lost)
    started = time.monotonic()
    assert lock.acquire(blocking=False)
    own_redis.pause()  # SIGSTOP: renewals time out from now on
    with caplog.at_level(logging.WARNING, logger="locks"):
        assert fired.wait(timeout=2.0), "on_lost never fired"
    own_redis.resume()
    assert lost_at[0] < started + 1.5, "on_lost must come while the lease still runs"
    assert lock.lost
    assert any(r.levelno == logging.WARNING and "nightly:reconcile" in r.getMessage() for r in caplog.records)
    assert lock_metrics.value("lost_total", backend="redis", lock="nightly") == lost_before + 1


def test_3_on_lost_fires_when_a_renewal_finds_another_holders_token(redis_db):
    fired = threading.Event()
    lock = RedisLock("nightly:export", ttl=0.9, auto_renew=True, on_lost=lambda lock: fired.set())
    assert lock.acquire(blocking=False)
    lost_before = lock_metrics.value("lost_total", backend="redis", lock="nightly")
    redis_db.set(lock.key, "another-holder", px=5000)  # our lease ran out and somebody took it
    assert fired.wait(timeout=0.9)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert redis_db.get(lock.key) == b"another-holder"
    assert lock_metrics.value("lost_total", backend="redis", lock="nightly") == lost_before + 1  # reported once

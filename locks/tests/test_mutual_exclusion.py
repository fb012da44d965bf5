"""Mutual exclusion under load for each backend (docs/locks.md, "What each one guarantees")."""

import time

import pytest

from locks import MySQLNamedLock, RedisLock
from shop.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16
INCREMENTS = 200


@pytest.mark.parametrize(
    "make_lock",
    [lambda: RedisLock("counter:redis", ttl=5), lambda: MySQLNamedLock("counter:mysql", timeout=30)],
    ids=["redis", "mysql"],
)
def test_6_sixteen_threads_times_200_increments_of_a_racy_counter_lose_none(make_lock):
    counter = {"value": 0}

    def increment_many(_):
        lock = make_lock()
        for _ in range(INCREMENTS):
            with lock:
                value = counter["value"]
                time.sleep(0)  # hand the GIL over between the read and the write
                counter["value"] = value + 1

    results = run_concurrently(increment_many, THREADS)
    assert not [r for r in results if r is not None], results
    assert counter["value"] == THREADS * INCREMENTS

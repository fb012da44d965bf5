"""Blocked waiters wait on a signal, not in a polling loop (docs/locks.md, "What each one guarantees")."""

import threading
import time

import pytest

from locks import RedisLock

pytestmark = pytest.mark.django_db(transaction=True)

WAITERS = 50


def commands_sent(client):
    """What the lock sends (its scripts and BLPOP); commands run inside scripts are not counted."""
    stats = client.info("commandstats")
    sent = {"evalsha", "eval", "blpop"}
    return sum(value["calls"] for name, value in stats.items() if name.removeprefix("cmdstat_") in sent)


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_5_fifty_waiters_cost_a_few_commands_each_and_get_the_lock_one_after_another(own_redis):
    client = own_redis.client()
    holder = RedisLock("flash:1", ttl=5, client=client)
    assert holder.acquire(blocking=False)
    client.config_resetstat()

    state = {"inside": 0, "most_inside": 0, "served": 0}
    mutex = threading.Lock()
    barrier = threading.Barrier(WAITERS)
    errors = []

    def wait_then_work():
        try:
            lock = RedisLock("flash:1", ttl=5, client=client)
            barrier.wait(timeout=10)
            assert lock.acquire(blocking=True, timeout=20)
            with mutex:
                state["inside"] += 1
                state["most_inside"] = max(state["most_inside"], state["inside"])
            time.sleep(0.001)
            with mutex:
                state["inside"] -= 1
                state["served"] += 1
            lock.release()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wait_then_work, daemon=True) for _ in range(WAITERS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: client.info("clients")["blocked_clients"] == WAITERS)

    while_waiting = commands_sent(client)
    time.sleep(0.5)
    assert commands_sent(client) == while_waiting, "waiters must not send anything while the lock stays held"
    assert while_waiting <= 2 * WAITERS  # one failed attempt and one BLPOP each

    released_at = time.monotonic()
    holder.release()
    for thread in threads:
        thread.join(timeout=10)
    handed_down_in = time.monotonic() - released_at

    assert not errors, errors
    assert state["served"] == WAITERS and state["most_inside"] == 1
    assert handed_down_in < 3.0, "each release must wake the next waiter, not leave it to its timeout"
    # Per waiter: failed attempt, BLPOP, winning attempt, release; a few more for the
    # waiters a fresh release found between their attempt and their BLPOP.
    assert commands_sent(client) <= 6 * WAITERS

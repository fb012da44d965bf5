"""The Redis lock's contract: fail-fast, context manager, extend, keys, scripts, round trips."""

import threading

import pytest
from redis.cluster import key_slot

from locks import LockAcquireTimeout, LockNotOwnedError, RedisLock, lock_metrics

pytestmark = pytest.mark.django_db(transaction=True)


def client_commands(client):
    """Commands clients sent, by name; scripts' own inner calls and our probes left out."""
    stats = client.info("commandstats")
    inner = {"set", "get", "del", "pttl", "exists", "incr", "lpush", "ltrim", "pexpire"}
    probes = {"info", "config|resetstat", "config"}
    return {
        name.removeprefix("cmdstat_"): value["calls"]
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in inner | probes
    }


def test_a_second_holder_fails_fast_and_gets_it_after_release():
    first, second = RedisLock("job:1"), RedisLock("job:1")
    contended = lock_metrics.value("contended_total", backend="redis", lock="job")
    assert first.acquire(blocking=False)
    assert first.locked() and first.owned()
    first_token = first.fencing_token  # read while held: the first use of a name issues it on this read
    assert not second.acquire(blocking=False)
    assert lock_metrics.value("contended_total", backend="redis", lock="job") == contended + 1
    first.release()
    assert not first.locked()
    assert second.acquire(blocking=False)
    assert second.fencing_token > first_token
    second.release()


def test_a_blocking_acquire_gives_up_after_its_timeout_and_counts_it():
    holder, waiter = RedisLock("job:2", ttl=5), RedisLock("job:2")
    timed_out = lock_metrics.value("timed_out_total", backend="redis", lock="job")
    assert holder.acquire()
    assert waiter.acquire(blocking=True, timeout=0.2) is False
    assert lock_metrics.value("timed_out_total", backend="redis", lock="job") == timed_out + 1
    holder.release()


def test_the_context_manager_raises_when_the_lock_stays_busy():
    holder = RedisLock("job:3", ttl=5)
    assert holder.acquire()
    with pytest.raises(LockAcquireTimeout), RedisLock("job:3", blocking_timeout=0.1):
        pytest.fail("the body must not run without the lock")
    holder.release()
    with RedisLock("job:3") as lock:
        assert lock.owned()
    assert not lock.locked()


def test_extend_sets_the_remaining_lease_only_while_the_lock_is_ours(redis_db):
    lock = RedisLock("job:4", ttl=1)
    assert lock.acquire()
    lock.extend(30)
    assert 29_000 < redis_db.pttl(lock.key) <= 30_000
    lock.reacquire()
    assert redis_db.pttl(lock.key) <= 1000
    redis_db.set(lock.key, "somebody-else")
    with pytest.raises(LockNotOwnedError):
        lock.extend(30)
    assert redis_db.get(lock.key) == b"somebody-else" and redis_db.pttl(lock.key) == -1


def test_all_keys_of_a_lock_share_one_cluster_slot():
    plain = RedisLock("job:5")
    scoped = RedisLock("customer:7", fence_scope="sale:42")
    assert len({key_slot(k.encode()) for k in (plain.key, plain.wake_key, plain.fence_key)}) == 1
    assert len({key_slot(k.encode()) for k in (scoped.key, scoped.wake_key, scoped.fence_key)}) == 1
    assert scoped.fence_key == RedisLock("sale:42").fence_key
    with pytest.raises(ValueError):
        RedisLock("job:{6}")


def test_locks_in_one_fence_scope_share_a_counter_and_each_one_still_grows():
    tokens = []
    for customer in (1, 2, 1, 3, 2):
        lock = RedisLock(f"customer:{customer}", fence_scope="sale:43")
        assert lock.acquire(blocking=False)
        tokens.append(lock.fencing_token)
        lock.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


def test_uncontended_acquire_and_release_are_one_round_trip_each_and_start_no_thread(own_redis):
    client = own_redis.client()
    with RedisLock("warm", client=client):  # first use: seeds the fence counter, loads the scripts
        pass
    lock = RedisLock("hot", fence_scope="warm", client=client)
    threads_before = threading.active_count()
    client.config_resetstat()
    assert lock.acquire(blocking=False)
    assert client_commands(client) == {"evalsha": 1}
    assert threading.active_count() == threads_before
    client.config_resetstat()
    lock.release()
    assert client_commands(client) == {"evalsha": 1}


def test_scripts_run_by_sha_and_are_sent_again_after_a_script_flush(own_redis):
    client = own_redis.client()
    lock = RedisLock("job:7", client=client)
    assert lock.acquire()
    lock.release()
    client.script_flush()
    client.config_resetstat()
    assert lock.acquire()
    assert client_commands(client) == {"evalsha": 1, "eval": 1}  # NOSCRIPT, then the source once
    lock.release()

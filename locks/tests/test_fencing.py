"""Fencing tokens and the database check that uses them (test 7 of issue 3, and fence_check)."""

import itertools

import pytest
from django.db import transaction

from locks import RedisLock, StaleTokenError, fence_check
from locks.models import FencingToken

pytestmark = pytest.mark.django_db(transaction=True)


def strictly_increasing(tokens):
    return all(a < b for a, b in itertools.pairwise(tokens))


def test_fence_check_refuses_a_lower_token_and_accepts_an_equal_or_higher_one():
    with transaction.atomic():
        fence_check("sale:9", 10)
    with transaction.atomic():
        fence_check("sale:9", 10)  # the same holder writing twice
    with transaction.atomic():
        fence_check("sale:9", 12)
    with pytest.raises(StaleTokenError) as refused, transaction.atomic():
        fence_check("sale:9", 11)
    assert (refused.value.token, refused.value.highest) == (11, 12)
    assert FencingToken.objects.get(resource="sale:9").highest_token == 12


def test_fence_check_outside_the_guarded_transaction_is_an_error():
    with pytest.raises(transaction.TransactionManagementError):
        fence_check("sale:10", 1)


def test_7_tokens_strictly_increase_across_processes_and_a_redis_restart_never_takes_them_below_the_db_mark(
    own_redis, worker
):
    """Four processes take the lock 1,000 times in all; each passes fence_check and logs its
    token in Redis while it holds the lock, so the log is in lock order. Then Redis restarts
    empty and three processes carry on from the database's high-water mark."""
    name, log_key = "settlement:1", "settlement:1:log"
    client = own_redis.client()

    runs = [worker("fence-run", name, str(own_redis.port), "250") for _ in range(4)]
    for run in runs:
        run.finish()
    before_restart = [int(t) for t in client.lrange(log_key, 0, -1)]
    assert len(before_restart) == 1000
    assert strictly_increasing(before_restart)
    high_water = FencingToken.objects.get(resource=name).highest_token
    assert high_water == before_restart[-1]

    own_redis.restart()  # no persistence: the fence counter is gone
    assert not client.exists(RedisLock(name).fence_key)

    runs = [worker("fence-run", name, str(own_redis.port), "50") for _ in range(3)]
    for run in runs:
        run.finish()
    after_restart = [int(t) for t in client.lrange(log_key, 0, -1)]
    assert len(after_restart) == 150
    assert strictly_increasing(after_restart)
    assert after_restart[0] > high_water
    assert FencingToken.objects.get(resource=name).highest_token == after_restart[-1]


def test_a_holder_from_before_a_redis_restart_is_fenced_out_even_if_it_never_wrote(own_redis):
    """The epoch reserved on reseeding is above every earlier token, written or not."""
    client = own_redis.client()
    unwritten = RedisLock("payout:1", client=client)
    assert unwritten.acquire()
    unwritten_token = unwritten.fencing_token  # issued (first use seeds the counter), never written
    own_redis.restart()

    after = RedisLock("payout:1", client=client)
    assert after.acquire()
    assert after.fencing_token > unwritten_token
    with transaction.atomic():
        fence_check("payout:1", after.fencing_token)
    with pytest.raises(StaleTokenError), transaction.atomic():
        fence_check("payout:1", unwritten_token)

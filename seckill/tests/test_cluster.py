"""The flash sale on a real Redis Cluster (`make test-cluster`: 3 masters, 3 replicas on loopback).

The rest of the suite runs on the cluster too under that target; these tests check what
only a cluster can show: sales whose hash tags land on different masters each sell
exactly their stock, the slot-aware reads across sales, the units-back channel, a
lock waiter's bound, and a cluster that does not answer (no node, or a paused master)
turning into 503 "unavailable" within about a second, never a 500.
"""

import os
import signal
import time
from collections import Counter

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core import redis_cluster
from locks.redis_lock import RedisLock
from orders.models import Order
from seckill import cache, intents, keys, stock, writer
from seckill.models import SeckillOrder
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants
from shop.tests.concurrency import run_concurrently
from shop.tests.factories import token_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_CLUSTER_NODES, reason="needs a Redis Cluster: make test-cluster"),
]


def purchase_url(activity):
    return f"/api/seckill/activities/{activity.pk}/purchase/"


def master_of(activity):
    """The per-node client of the master that holds the sale's slot."""
    client = stock.redis()
    node = client.nodes_manager.get_node_from_slot(client.keyslot(keys.stock(activity.pk)))
    return client.get_redis_connection(node)


def sales_on_different_masters(count, **options):
    """`count` sales whose keys live on `count` different masters (sale ids hash where they hash)."""
    chosen, masters = [], set()
    for _ in range(20):
        activity = create_sale(**options)
        port = master_of(activity).connection_pool.connection_kwargs["port"]
        if port not in masters:
            masters.add(port)
            chosen.append(activity)
        if len(chosen) == count:
            return chosen
    raise AssertionError("20 sales and still not on enough different masters")


def test_the_client_is_a_cluster_client_with_no_retries_beyond_the_bound():
    client = stock.redis()
    assert redis_cluster.is_cluster(client) and len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3
    assert client.retry.get_retries() == settings.REDIS_CLUSTER_RETRIES == 0
    assert redis_cluster.longest_call_s(client) == settings.REDIS_SOCKET_TIMEOUT


def test_two_sales_on_two_masters_each_sell_exactly_their_stock(many_connections, settings):
    settings.SECKILL_ACK_WAIT_SECONDS = 30.0  # ~200 threads in one interpreter: slow answers, not 202s
    first, second = sales_on_different_masters(2, stock=20, limit=1)
    users = create_customers(50)
    clients = [token_client(u) for u in users]

    def hit(i):
        activity = (first, second)[i % 2]
        customer = (i // 2) % len(users)
        response = clients[customer].post(purchase_url(activity), format="json", REMOTE_ADDR=f"10.2.{customer}.1")
        return activity.pk, response.status_code, response.json().get("code")

    results = run_concurrently(hit, len(users) * 4, timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    for activity in (first, second):
        answers = Counter((status, code) for pk, status, code in results if pk == activity.pk)
        assert answers[(201, None)] == 20, answers
        assert set(answers) <= {(201, None), (409, "sold_out"), (409, "limit_reached")}, answers
        assert SeckillOrder.objects.filter(activity=activity).count() == 20
        assert_invariants(activity, expect_sold=20)
    assert stock.remaining_many([first.pk, second.pk]) == {first.pk: 0, second.pk: 0}  # one MGET per slot
    assert stock.redis().xlen(keys.intents(first.pk)) == stock.redis().xlen(keys.intents(second.pk)) == 0


def test_units_back_reaches_the_listener_through_cluster_pubsub():
    activity = create_sale(stock=1)
    cache.mark_sold_out(activity.pk)  # starts this process's listener
    deadline = time.monotonic() + 10
    while cache.is_sold_out(activity.pk) and time.monotonic() < deadline:
        stock.announce_units_back(activity.pk)  # repeated until the listener has subscribed
        time.sleep(0.1)
    assert not cache.is_sold_out(activity.pk)


def test_a_lock_waiter_gives_up_within_its_own_limit():
    holder = RedisLock("cluster-test", ttl=10, fencing=False)
    waiter = RedisLock("cluster-test", ttl=10, fencing=False)
    assert holder.acquire()
    try:
        started = time.monotonic()
        assert waiter.acquire(timeout=1.5) is False
        assert time.monotonic() - started < 2.5  # the BLPOP is capped under the socket timeout
    finally:
        holder.release()


def test_an_unreachable_cluster_is_a_503_for_the_api_and_health(settings, customer):
    activity = create_sale(stock=2)
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "LOCATION": ["127.0.0.1:1,127.0.0.1:2"]}  # no node answers
    settings.CACHES = caches
    response = token_client(customer).post(purchase_url(activity), format="json")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "unavailable"
    health = APIClient().get("/healthz")
    assert health.status_code == 503 and health.json()["redis"]["status"] == "down"
    assert not Order.objects.exists()


def test_a_paused_master_is_a_503_within_about_a_second_not_after_retries(settings, customer):
    activity = create_sale(stock=2)
    client = token_client(customer)
    pid = int(master_of(activity).info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # shorter than the node timeout (5 s): no failover starts
    try:
        started = time.monotonic()
        response = client.post(purchase_url(activity), format="json")
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert response.status_code == 503 and response.json()["code"] == "unavailable", response.content
    assert elapsed < settings.REDIS_SOCKET_TIMEOUT + 1.5, elapsed
    # The paused master runs the script once it resumes: the unit is reserved and its intent
    # written, the customer was told 503. The writer makes it an order; nothing is lost or oversold.
    for _ in range(50):
        if stock.redis().ping():
            break
        time.sleep(0.1)
    writer.drain(activity.pk)
    assert_invariants(activity)
    assert Order.objects.count() <= 1


def test_the_buckets_of_one_hot_sale_land_on_several_masters_and_it_sells_exactly_its_stock(many_connections, settings):
    settings.SECKILL_ACK_WAIT_SECONDS = 30.0
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    client = stock.redis()

    def masters(activity):
        spaces = keys.spaces(activity.pk, activity.bucket_count)
        return {client.nodes_manager.get_node_from_slot(client.keyslot(keys.stock(s))).port for s in spaces}

    activity = create_sale(stock=30, limit=1, bucket_count=3)
    for _ in range(10):  # bucket tags hash where they hash: a sale whose three are all on one master is rare
        if len(masters(activity)) > 1:
            break
        activity = create_sale(stock=30, limit=1, bucket_count=3)
    assert len(masters(activity)) > 1
    users = create_customers(90)
    clients = [token_client(u) for u in users]
    clients[0].get(f"/api/seckill/activities/{activity.pk}/")

    def hit(i):
        customer = i // 2
        response = clients[customer].post(purchase_url(activity), format="json", REMOTE_ADDR=f"10.3.{customer}.1")
        return response.status_code, response.json().get("code")

    results = run_concurrently(hit, len(users) * 2, timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    answers = Counter(results)
    assert answers[(201, None)] == 30, answers
    assert set(answers) <= {(201, None), (409, "sold_out"), (409, "limit_reached")}, answers
    writer.drain(activity.pk)
    assert SeckillOrder.objects.filter(activity=activity).count() == 30
    assert SeckillOrder.objects.filter(activity=activity).values("user").distinct().count() == 30
    assert stock.remaining(activity.pk) == 0


def test_a_writer_goes_on_with_the_other_buckets_while_one_buckets_master_is_paused(settings):
    """One bucket's master does not answer (a failover under way): the order writer rests that
    bucket's stream and writes the others' orders meanwhile, then the paused one's once it
    answers again (seckill/writer.py, `_rest`); nothing is written twice or lost."""
    settings.SECKILL_ACK = "reserved"
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    client = stock.redis()

    def port_of(space):
        return client.nodes_manager.get_node_from_slot(client.keyslot(keys.stock(space))).port

    for _ in range(10):
        activity = create_sale(stock=30, limit=1, bucket_count=3)
        spaces = keys.spaces(activity.pk, 3)
        if len({port_of(s) for s in spaces}) > 1:
            break
    assert len({port_of(s) for s in spaces}) > 1
    paused = spaces[0]
    homes = {}
    for user in create_customers(60):
        homes.setdefault(keys.home_space(activity.pk, user.pk, 3), []).append(user)
    on_paused = homes[paused][:2]
    elsewhere = [u for s in spaces if port_of(s) != port_of(paused) for u in homes.get(s, [])[:2]]
    assert on_paused and elsewhere
    order_writer = writer.Writer(consumer="paused-master-writer", claim_idle_ms=0)
    order_writer.tick()  # its consumer groups exist before the purchases
    for user in on_paused + elsewhere:
        response = token_client(user).post(purchase_url(activity), {"quantity": 1}, format="json")
        assert response.status_code == 202, response.content
    node = client.nodes_manager.get_node_from_slot(client.keyslot(keys.stock(paused)))
    pid = int(client.get_redis_connection(node).info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # shorter than the node timeout: no failover
    try:
        order_writer.tick()
        written = set(SeckillOrder.objects.filter(activity=activity).values_list("user_id", flat=True))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert written == {u.pk for u in elsewhere}
    time.sleep(writer.OUTAGE_PAUSE_S + 0.1)
    for _ in range(5):  # its entries come back through the claim of pending ones
        order_writer.tick()
    writer.drain(activity.pk)
    orders = list(SeckillOrder.objects.filter(activity=activity).values_list("user_id", flat=True))
    assert sorted(orders) == sorted(u.pk for u in on_paused + elsewhere)


def test_a_stream_read_goes_to_its_own_master_while_the_default_node_does_not_answer():
    """redis-py asks the cluster's default node where XREADGROUP's keys are; the shop's client
    reads them from the arguments instead (core/redis_cluster.py), so the writers' reads of
    streams on live masters do not depend on one node that may be the dead one."""
    client = stock.redis()
    default = client.get_default_node()
    space = next(
        f"{i}:b0"
        for i in range(1000)
        if client.nodes_manager.get_node_from_slot(client.keyslot(keys.intents(f"{i}:b0"))).name != default.name
    )
    intents.ensure_group(space)
    pid = int(client.get_redis_connection(default).info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # shorter than the node timeout: no failover
    try:
        started = time.monotonic()
        found = intents.read_new(space, consumer="default-node-paused", count=10)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert found == [] and elapsed < settings.REDIS_SOCKET_TIMEOUT / 2, elapsed

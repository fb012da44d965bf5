"""Hot-sale stock buckets (seckill/buckets.py, docs/scale-out.md "Hot-sale buckets") on the
real MariaDB and Redis: exact sales across buckets, transfers finished exactly once, sold
out only when everything is empty, returned units selling again."""

from collections import Counter

import pytest
import redis
from django.core.exceptions import ValidationError
from django.db.models import Sum

from orders.models import Order, new_order_number
from orders.services import order_cancel
from reconciliation import runner
from seckill import buckets, cache, keys, services, stock, writer
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillStockBucket
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.test_api import purchase_url
from shop.tests.concurrency import run_concurrently
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


def redis_books(activity):
    """reserve, [bucket counters], units in flight, open reservation units, per-customer held (all buckets)."""
    client = stock.redis()
    reserve = int(client.get(keys.reserve(activity.pk)))
    spaces = keys.spaces(activity.pk, activity.bucket_count)
    counters = [int(client.get(keys.stock(s))) for s in spaces]
    settled = set(SeckillOrder.objects.filter(activity=activity).values_list("reservation_id", flat=True))
    open_units = sum(r.quantity for s in spaces for r in stock.reservations(s) if r.reservation_id not in settled)
    held = Counter()
    for s in spaces:
        for user_id, units in client.hgetall(keys.users(s)).items():
            held[int(user_id)] += int(units)
    return reserve, counters, buckets.units_in_flight(activity.pk, activity.bucket_count), open_units, held


def assert_bucket_invariants(activity, *, expect_sold=None):
    activity = SeckillActivity.objects.get(pk=activity.pk)
    live = SeckillOrder.objects.filter(activity=activity, order__status__in=Order.LIVE_STATUSES)
    sold = live.aggregate(u=Sum("quantity"))["u"] or 0
    per_user = Counter()
    for user_id, quantity in live.values_list("user_id", "quantity"):
        per_user[user_id] += quantity
    rows = list(SeckillStockBucket.objects.filter(activity=activity).values_list("stock_available", flat=True))
    # I1 in the database: the rows are a partition of the units not yet ordered, each >= 0.
    assert len(rows) == activity.bucket_count and min(rows) >= 0 and activity.stock_available >= 0
    assert activity.stock_available + sum(rows) == activity.stock_total - activity.stock_returned - sold
    # I3: one place per customer, exact.
    assert all(u <= activity.per_user_limit for u in per_user.values()), per_user
    quotas = dict(SeckillQuota.objects.filter(activity=activity, units_held__gt=0).values_list("user_id", "units_held"))
    assert quotas == dict(per_user)
    # I5 in Redis: reserve + buckets + in flight + open + sold + returned = total.
    reserve, counters, moving, open_units, held = redis_books(activity)
    assert min([reserve, *counters]) >= 0
    assert reserve + sum(counters) + moving + open_units + sold + activity.stock_returned == activity.stock_total
    assert all(v <= activity.per_user_limit for v in held.values()), held
    if expect_sold is not None:
        assert sold == expect_sold
    return sold


def received_from(activity):
    """Counter of the sources of every transfer the buckets received: 'reserve' or a bucket's space."""
    sources = Counter()
    for space in keys.spaces(activity.pk, activity.bucket_count):
        for raw in stock.redis().hvals(keys.transfers_in(space)):
            sources["reserve" if raw.decode().startswith("reserve:") else "bucket"] += 1
    return sources


def test_warm_up_puts_a_chunk_in_every_bucket_and_the_rest_in_the_reserve():
    activity = create_sale(stock=40, bucket_count=3)
    reserve, counters, moving, open_units, _ = redis_books(activity)
    assert counters == [3, 3, 3] and reserve == 31 and moving == open_units == 0
    assert sorted(SeckillStockBucket.objects.values_list("index", "stock_available")) == [(0, 3), (1, 3), (2, 3)]
    assert SeckillActivity.objects.get(pk=activity.pk).stock_available == 31
    assert stock.remaining(activity.pk) == 40 and stock.remaining_many([activity.pk]) == {activity.pk: 40}


def test_one_bucket_keeps_the_keys_of_every_sale_before_buckets():
    activity = create_sale(stock=5)
    assert keys.spaces(activity.pk, 1) == [activity.pk] and keys.home_space(activity.pk, 12345, 1) == activity.pk
    assert stock.redis().get(keys.stock(activity.pk)) == b"5" and not stock.redis().exists(keys.reserve(activity.pk))
    assert not SeckillStockBucket.objects.exists()


def test_the_home_bucket_is_the_same_in_every_process():
    # CRC-32, not Python's per-process salted hash(): these values never change.
    assert [keys.home_bucket(u, 3) for u in (1, 2, 3, 4, 5, 1000)] == [2, 1, 1, 1, 1, 0]
    assert keys.space(7, 2) == "7:b2" and keys.sale_of("7:b2") == 7 and keys.bucket_of("7:b2") == 2
    assert keys.stock("7:b2") == "seckill:{7:b2}:stock" and keys.reserve(7) == "seckill:{7}:reserve"


def test_bucket_count_cannot_change_once_the_sale_is_published():
    activity = create_sale(stock=12, bucket_count=3)
    activity.bucket_count = 4
    with pytest.raises(ValidationError) as caught:
        activity.full_clean()
    assert "cannot change now" in caught.value.message_dict["bucket_count"][0]
    draft = create_sale(stock=12, starts_in=600, warm=False, bucket_count=2)
    draft.bucket_count = 17
    with pytest.raises(ValidationError) as caught:
        draft.full_clean()
    assert "At most 16 stock buckets" in caught.value.message_dict["bucket_count"][0]


@pytest.fixture
def patient_ack(settings):
    settings.SECKILL_ACK_WAIT_SECONDS = 60.0


@pytest.mark.slow
def test_a_3_bucket_sale_of_40_sells_exactly_40_to_200_customers_times_3(many_connections, patient_ack, settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=40, limit=1, bucket_count=3)
    # 200 customers, only one of them at home in bucket 2: its first chunk outlives the
    # reserve, so the other buckets must take units from it (a steal, on every run).
    homes = _customers_by_home(600, 3)
    users = [homes[2][0], *(homes[0] + homes[1])[:199]]
    assert len(users) == 200 and len({keys.home_bucket(u.pk, 3) for u in users}) == 3
    clients = [token_client(u) for u in users]
    url = purchase_url(activity)
    clients[0].get(f"/api/seckill/activities/{activity.pk}/")  # the middleware chain is built once, before the burst

    def hit(i):
        customer = i // 3
        response = clients[customer].post(url, {"quantity": 1}, format="json", REMOTE_ADDR=f"10.2.{customer}.1")
        return response.status_code, response.json().get("code"), customer

    results = run_concurrently(hit, 600, timeout=180)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    statuses = Counter((status, code) for status, code, _ in results)
    assert statuses[(201, None)] == 40, statuses
    assert set(statuses) <= {(201, None), (409, "sold_out"), (409, "limit_reached")}, statuses
    buyers = [customer for status, _, customer in results if status == 201]
    assert len(set(buyers)) == 40  # one per customer
    writer.drain(activity.pk)
    assert SeckillOrder.objects.count() == 40 and SeckillOrder.objects.values("user").distinct().count() == 40
    assert_bucket_invariants(activity, expect_sold=40)
    reserve, counters, moving, _open, _ = redis_books(activity)
    assert reserve == 0 and counters == [0, 0, 0] and moving == 0  # nothing stays unsold
    sources = received_from(activity)
    assert sources["reserve"] > 0, sources  # units moved from the reserve ...
    assert sources["bucket"] > 0, sources  # ... and then between buckets


def _customers_by_home(count, bucket_count):
    users = create_customers(count)
    homes = {}
    for u in users:
        homes.setdefault(keys.home_bucket(u.pk, bucket_count), []).append(u)
    return homes


def test_sold_out_only_when_the_reserve_and_every_bucket_are_empty(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=4, limit=1, bucket_count=2)  # chunk 1: buckets 1 + 1, reserve 2
    homes = _customers_by_home(40, 2)
    first, second = homes[0], homes[1]
    # Three customers of bucket 0 buy: their bucket, then the reserve's two units.
    for user in first[:3]:
        assert token_client(user).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    reserve, counters, *_ = redis_books(activity)
    assert reserve == 0 and counters == [0, 1]
    # A fourth customer of bucket 0 takes bucket 1's last unit: not sold out while it had one.
    assert token_client(first[3]).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    assert received_from(activity)["bucket"] == 1
    response = token_client(second[0]).post(purchase_url(activity), {"quantity": 1}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "sold_out"
    assert cache.is_sold_out(activity.pk)
    writer.drain(activity.pk)
    assert_bucket_invariants(activity, expect_sold=4)


def test_a_reserve_that_does_not_answer_is_passed_over_but_never_taken_for_empty(settings, monkeypatch):
    """The reserve's master is down (make cluster-test kills it for real, docs/scale-out.md):
    a short bucket takes a unit from another bucket instead; with no other bucket to take
    from, the answer is 503, not sold_out, and once the reserve answers again its units sell."""
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=4, limit=1, bucket_count=2)  # chunk 1: buckets 1 + 1, reserve 2
    first = _customers_by_home(40, 2)[0]
    real_take = buckets.take

    def reserve_down(activity_id, *, source, **kwargs):
        if source == buckets.RESERVE:
            raise redis.ConnectionError("the reserve's master does not answer")
        return real_take(activity_id, source=source, **kwargs)

    monkeypatch.setattr(buckets, "take", reserve_down)
    assert token_client(first[0]).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    # bucket 0 is empty: its next customer gets bucket 1's unit, the reserve passed over
    assert token_client(first[1]).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    assert received_from(activity) == Counter({"bucket": 1})
    response = token_client(first[2]).post(purchase_url(activity), {"quantity": 1}, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "unavailable")
    assert not cache.is_sold_out(activity.pk)
    assert redis_books(activity)[:2] == (2, [0, 0])  # the refused request changed nothing
    monkeypatch.setattr(buckets, "take", real_take)
    for user in first[2:4]:
        assert token_client(user).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    writer.drain(activity.pk)
    assert_bucket_invariants(activity, expect_sold=4)


def test_a_transfer_crashed_between_its_steps_is_finished_once_by_reconciliation():
    activity = create_sale(stock=40, bucket_count=3)
    target = keys.space(activity.pk, 1)
    transfer_id, units = buckets.take(activity.pk, source=buckets.RESERVE, target=target, want=5)
    assert units == 5  # step 1 done, then the mover "crashed"
    assert stock.remaining(activity.pk) == 35 and buckets.units_in_flight(activity.pk) == 5
    assert_bucket_invariants(activity, expect_sold=0)  # the units in flight are counted
    found = runner.reconcile(activity_ids=[activity.pk], fix=False)
    # too young to be reported: a live mover may be on its way to step 2
    assert not [f for f in found.findings if f.detail.get("reason") == "unfinished_transfer"]
    long_ago = stock.server_time_ms() - buckets.STALE_TRANSFER_MS - 1000
    stock.redis().hset(keys.transfers_out(activity.pk), transfer_id, f"{target}:5:{long_ago}")
    found = runner.reconcile(activity_ids=[activity.pk], fix=False)
    [finding] = [f for f in found.findings if f.detail.get("reason") == "unfinished_transfer"]
    assert finding.detail["transfer_id"] == transfer_id and finding.detail["units"] == 5
    fixed = runner.reconcile(activity_ids=[activity.pk], fix=True)
    [repair] = [r for r in fixed.repairs if r["action"] == "finish_transfers"]
    assert repair["finished"] == 1 and repair["activity_id"] == activity.pk
    assert stock.redis().get(keys.stock(target)) == b"8" and buckets.units_in_flight(activity.pk) == 0
    # Finishing again (a second sweep, the beat, the mover waking up) adds nothing.
    assert buckets.finish(activity.pk, source=buckets.RESERVE, transfer_id=transfer_id, target=target, units=5) == 0
    assert buckets.finish_transfers(activity.pk, older_than_ms=0) == 0
    assert stock.redis().get(keys.stock(target)) == b"8" and stock.remaining(activity.pk) == 40
    assert_bucket_invariants(activity, expect_sold=0)
    again = runner.reconcile(activity_ids=[activity.pk], fix=False)
    assert not [f for f in again.findings if f.kind == "stock_drift"], again.findings


def test_a_returned_unit_goes_back_to_its_bucket_and_sells_again(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=3, limit=1, bucket_count=3)  # one unit per bucket, empty reserve
    homes = _customers_by_home(60, 3)
    buyers = [homes[0][0], homes[1][0], homes[2][0]]
    for user in buyers:
        assert token_client(user).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    late = homes[1][1]
    response = token_client(late).post(purchase_url(activity), {"quantity": 1}, format="json")
    assert response.json()["code"] == "sold_out" and cache.is_sold_out(activity.pk)
    order = Order.objects.get(user=buyers[1])
    order_cancel(order=order)
    assert stock.redis().get(keys.stock(keys.space(activity.pk, 1))) == b"1"  # back in bucket 1
    cache.units_back(activity.pk)  # what the units-back message does in every web process
    assert token_client(late).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    writer.drain(activity.pk)
    assert_bucket_invariants(activity, expect_sold=3)


def test_a_writer_short_in_its_bucket_row_takes_the_difference_from_the_reserve_row(settings):
    settings.SECKILL_RATE_LIMIT_PER_CUSTOMER = 0
    activity = create_sale(stock=12, limit=1, bucket_count=2)  # rows 1 + 1, reserve 10
    homes = _customers_by_home(40, 2)
    for user in homes[0][:4]:
        assert token_client(user).post(purchase_url(activity), {"quantity": 1}, format="json").status_code == 201
    writer.drain(activity.pk)
    rows = dict(SeckillStockBucket.objects.values_list("index", "stock_available"))
    assert rows == {0: 0, 1: 1} and SeckillActivity.objects.get(pk=activity.pk).stock_available == 7
    assert_bucket_invariants(activity, expect_sold=4)


def test_a_stranded_reservation_goes_back_to_its_bucket_and_the_books_balance():
    activity = create_sale(stock=12, limit=1, bucket_count=3)  # rows 1 + 1 + 1, reserve 9
    [user] = create_customers(1)
    home = keys.home_space(activity.pk, user.pk, 3)
    result = stock.reserve(
        sale=cache.sale_info(activity.pk),
        user_id=user.pk,
        quantity=1,
        reservation_id="f" * 32,
        number=new_order_number(),
        space=home,
    )
    assert result.outcome == "ok" and stock.redis().get(keys.stock(home)) == b"0"
    stock.redis().delete(keys.intents(home))  # the intent is lost (a Redis that kept nothing on disk)
    assert services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0) == ["f" * 32]
    assert stock.redis().get(keys.stock(home)) == b"1" and stock.held_by(home, user.pk) == 0
    assert_bucket_invariants(activity, expect_sold=0)

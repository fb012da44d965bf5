"""The bench's helpers around the order pipeline, on the real MariaDB and Redis of the tests:
the writer phase's preload makes intents the writer writes exactly once, lost acks are
counted from order numbers, a drained sale is seen as drained, a retired one is off the
writers' list."""

import pytest
from django.utils import timezone

from bench import data, writer_phase
from orders.models import Order
from seckill import keys, stock, writer
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillRefusal

pytestmark = pytest.mark.django_db


def test_preloaded_intents_are_real_ones_the_writer_writes_exactly_once():
    users = data.writer_customers(30)
    assert len(users) == 30
    assert data.writer_customers(30) == users  # kept between runs, not created twice
    sale = data.create_sale("preload", 30)

    preloaded = writer_phase.preload(sale, users)

    assert len(preloaded) == 30
    assert data.intents_waiting(sale) == 30
    assert stock.remaining(sale) == 0  # purchase.lua reserved every unit
    assert {r.reservation_id for r in stock.reservations(sale)} == {rid for rid, _ in preloaded}
    assert writer.drain(sale) == 30
    assert data.intents_waiting(sale) == 0
    assert set(writer_phase._written_pairs(sale)) == set(preloaded)
    assert SeckillQuota.objects.filter(activity_id=sale).count() == 30
    assert not SeckillRefusal.objects.filter(activity_id=sale).exists()
    assert SeckillActivity.objects.get(pk=sale).stock_available == 0
    batches = writer_phase._batches(sale)
    assert sum(n for _, n in batches) == 30
    assert len(batches) == 1  # one transaction, one created_at stamp


def test_preload_stops_on_a_refusal():
    users = data.writer_customers(3)
    sale = data.create_sale("preload-small", 2)
    with pytest.raises(RuntimeError, match="sold_out"):
        writer_phase.preload(sale, users)


def test_lost_acks_counts_numbers_without_an_order():
    users = data.writer_customers(4)
    sale = data.create_sale("acks", 4)
    preloaded = writer_phase.preload(sale, users)
    writer.drain(sale)
    numbers = [number for _, number in preloaded]
    assert data.lost_acks(numbers) == {"acks": 4, "lost_acks": 0, "duplicate_acks": 0, "lost_examples": []}
    found = data.lost_acks([*numbers, numbers[0], "FS-NOT-THERE"])
    assert (found["acks"], found["lost_acks"], found["duplicate_acks"]) == (6, 1, 1)
    assert found["lost_examples"] == ["FS-NOT-THERE"]
    assert Order.objects.filter(number__in=numbers).count() == 4


def test_wait_drained_and_retire_sale():
    users = data.writer_customers(2)
    sale = data.create_sale("drain", 2)
    writer_phase.preload(sale, users)
    with pytest.raises(RuntimeError, match="still waiting"):
        data.wait_drained(sale, timeout=0.1)
    writer.drain(sale)
    assert data.wait_drained(sale) < 1
    assert SeckillOrder.objects.filter(activity_id=sale).count() == 2

    data.retire_sale(sale)
    # the writers' filter (seckill/writer.py `_live_sales`): sales that ended less than WRITER_AFTER_END ago
    assert SeckillActivity.objects.get(pk=sale).ends_at < timezone.now() - stock.WRITER_AFTER_END
    assert stock.redis().exists(keys.meta(sale))  # Redis is left alone: only the DB window moves

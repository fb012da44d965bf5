"""The `writer` phase of `make bench`: how fast the order writer drains a full stream.

1. A fresh sale of N units (N >= 50,000 in a full run), limit 1, published and warmed
   like any other; N customers of its own (bench/data.py `writer_customers`).
2. The stream is preloaded by purchase.lua itself (seckill/lua/purchase.lua, the script
   every purchase runs): one EVALSHA per customer, pipelined 1,000 at a time, with the
   rate limits off. So every intent is a real one, with its reservation entry, its
   deadline, its order number and a customer that exists, and the sale's Redis stock
   is down to 0, as after a sell-out.
3. With no other writer running, W writer processes (`manage.py seckill_writer`, as
   the Procfile runs it) start; the bench polls the stream every 10 ms until it is
   empty.
4. orders/s = N / (empty stream - start of the first batch's transaction); the start is
   the `created_at` the writer stamps on every link of a batch (one value per batch,
   seckill/services/order_write.py), so process start-up is not counted. The same
   stamps give the batch sizes (batch_p50).
5. Checked: every preloaded (reservation, order number) became exactly one order with
   its link, nothing was refused, the sale's DB pool is at 0.
"""

import statistics
import time
import uuid
from datetime import UTC, datetime

from django.db import connection

from bench import stack as stk
from orders.models import new_order_number
from seckill import cache, keys, stock
from seckill.models import SeckillActivity, SeckillRefusal

PIPELINE = 1000


def preload(activity_id, user_ids):
    """Run purchase.lua once per customer (pipelined); returns [(reservation id, order number)]."""
    sale = cache.sale_info(activity_id)
    client = stock.redis()
    client.script_load(stock.PURCHASE.source)
    price = str(sale.price)
    window = 1000
    written = []
    for start in range(0, len(user_ids), PIPELINE):
        pipe = client.pipeline(transaction=False)
        batch = []
        for user_id in user_ids[start : start + PIPELINE]:
            rid, number = uuid.uuid4().hex, new_order_number()
            # The keys and arguments of seckill/stock.py `reserve`, with both rate limits off (0).
            pipe.evalsha(
                stock.PURCHASE.sha,
                10,
                keys.meta(activity_id),
                keys.stock(activity_id),
                keys.users(activity_id),
                keys.reservations(activity_id),
                keys.rate_customer(activity_id, user_id),
                keys.rate_ip(activity_id, "-"),
                keys.due(activity_id),
                keys.intents(activity_id),
                keys.answers(activity_id),
                keys.numbers(activity_id),
                user_id,
                1,
                rid,
                0,
                0,
                window,
                number,
                "",
                price,
                "",
            )
            batch.append((rid, number))
        for (rid, number), answer in zip(batch, pipe.execute(), strict=True):
            outcome = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
            if outcome != "ok":
                raise RuntimeError(f"preload: purchase.lua answered {outcome!r} for reservation {rid}")
            written.append((rid, number))
    return written


def _batches(activity_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT created_at, COUNT(*) FROM seckill_seckillorder WHERE activity_id = %s "
            "GROUP BY created_at ORDER BY created_at",
            [activity_id],
        )
        return cursor.fetchall()


def _written_pairs(activity_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT so.reservation_id, o.number FROM seckill_seckillorder so "
            "JOIN orders_order o ON o.id = so.order_id WHERE so.activity_id = %s",
            [activity_id],
        )
        return cursor.fetchall()


def _as_utc_timestamp(value):
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def drain(bench, *, intents, writers, tag):
    """One timed drain of a preloaded stream of `intents` intents by `writers` writer processes."""
    d = bench.data
    users = d.writer_customers(intents)
    sale = d.create_sale(tag, intents)
    t0 = time.monotonic()
    preloaded = preload(sale, users)
    preload_s = time.monotonic() - t0
    waiting = d.intents_waiting(sale)
    print(f"  writer: {waiting:,} intents preloaded by purchase.lua in {preload_s:.1f} s", flush=True)
    launched = time.time()
    procs = [stk.start_writer(bench.stack, f"drain-writer-{tag}-{i + 1}", bench.writer_env) for i in range(writers)]
    cpu_before = sum(p.cpu() for p in procs)
    try:
        deadline = time.monotonic() + 600
        while d.intents_waiting(sale) and time.monotonic() < deadline:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited:\n{p.log_tail()}")
            time.sleep(0.01)
        emptied = time.time()
        cpu = sum(p.cpu() for p in procs) - cpu_before
    finally:
        for p in procs:
            bench.stack.stop(p)
    if d.intents_waiting(sale):
        raise RuntimeError(f"writer phase: the stream of sale {sale} did not drain in 600 s")
    batches = _batches(sale)
    sizes = [n for _, n in batches]
    first = _as_utc_timestamp(batches[0][0])
    span = emptied - first
    written = set(_written_pairs(sale))
    activity = SeckillActivity.objects.get(pk=sale)
    refused = SeckillRefusal.objects.filter(activity_id=sale).count()
    exactly_once = written == set(preloaded) and len(written) == intents and not refused
    result = {
        "intents": intents,
        "writers": writers,
        "orders_per_s": round(intents / span, 1) if span > 0 else None,
        "batch_p50": statistics.median(sizes),
        "batch_max": max(sizes),
        "batches": len(sizes),
        "drain_s": round(span, 3),
        "from_launch_s": round(emptied - launched, 2),
        "writer_cpu_s": round(cpu, 2),
        "preload_s": round(preload_s, 2),
        "orders_written": len(written),
        "refused": refused,
        "db_pool_left": activity.stock_available,
        "redis_remaining": stock.remaining(sale),
        "exactly_once": exactly_once and activity.stock_available == 0,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    d.retire_sale(sale)
    print(
        f"  writer x{writers}: {result['orders_per_s']:,.0f} orders/s over {span:.2f} s, batch p50 "
        f"{result['batch_p50']:.0f} (max {result['batch_max']}), {len(sizes)} batches, "
        f"exactly once: {result['exactly_once']}",
        flush=True,
    )
    return result


def run(bench, *, intents, writer_counts):
    """Every drain of the phase; the fastest is the headline figure (latest.json "writer",
    whose "writers" says how many processes it took: writers are meant to run side by side)."""
    runs = [drain(bench, intents=intents, writers=w, tag=f"writer-x{w}") for w in writer_counts]
    head = dict(max(runs, key=lambda run: run["orders_per_s"]))
    head["runs"] = runs
    return head

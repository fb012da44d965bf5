"""Hot-sale stock buckets: one sale's units spread over several Redis Cluster slots.

A sale's keys share one hash tag, so one sale lives on one Redis master. A sale with
`bucket_count` B > 1 has B key spaces instead (seckill/keys.py `space`), each a
mini-sale with its own counter, holders, reservations, due set, intent stream,
answers and numbers, so purchase.lua runs unchanged against one of them; B tags land
on different masters. The units not yet in a bucket wait in the sale's reserve, under
the sale's own tag (docs/scale-out.md "Hot-sale buckets").

Why it stays exact:
- a customer always buys in the same bucket, its home (CRC-32 of the customer id), so
  its parallel requests still meet in one script and the limit is counted in one place;
- units move, customers never do: when the home bucket is short, units move into it
  from the reserve, or, the reserve empty, from another bucket. A move crosses slots,
  so it cannot be one script; it is a two-step transfer with an id: step 1 on the
  source's slot takes the units and records the transfer as outgoing
  (transfer_out.lua); step 2 on the target's slot adds them once, recording the id as
  received (transfer_in.lua); then the outgoing record is cleared. A crash between the
  steps leaves the outgoing record, which the sweep (`finish_transfers`, a beat job)
  and `reconcile --fix` complete; step 2 is a no-op the second time, so a transfer
  finishes exactly once however many finish it;
- "sold out" is answered only after the reserve and every other bucket gave nothing;
- the database keeps its own partition of the pool (SeckillStockBucket rows plus the
  sale row as reserve), each row CHECKed >= 0 (seckill/services/order_write.py).
These extra round trips happen only when a bucket is short, never on the common path.
"""

import logging
import uuid
from collections import defaultdict

from core.redis_errors import REDIS_ERRORS
from seckill import cache, keys, stock
from seckill.models import SeckillStockBucket

log = logging.getLogger(__name__)

RESERVE = "reserve"
# An outgoing record younger than this may belong to a move still on its way to step 2.
STALE_TRANSFER_MS = 5_000


def count(activity_id):
    """The sale's bucket count (1 for an unknown sale); fixed once published, so a cached value is safe."""
    sale = cache.sale_info(activity_id)
    return 1 if sale is None else sale.bucket_count


def spaces(activity_id):
    return keys.spaces(activity_id, count(activity_id))


def home(activity_id, user_id):
    """The key space a customer buys in: the sale's own for one bucket, else its home bucket's."""
    return keys.home_space(activity_id, user_id, count(activity_id))


def chunk_size(stock_total, bucket_count):
    """Units a bucket gets at warm-up and per refill from the reserve: a quarter of an even share,
    at least 1, so most units wait in the reserve until the bucket that sells them asks."""
    return max(1, stock_total // (bucket_count * 4))


def initial_split(stock_total, bucket_count):
    """([units of each bucket], reserve) at publication: a first chunk in every bucket, the rest in the reserve."""
    chunk, left, shares = chunk_size(stock_total, bucket_count), stock_total, []
    for _ in range(bucket_count):
        share = min(chunk, left)
        shares.append(share)
        left -= share
    return shares, left


def warm(*, activity, holders):
    """Load every bucket (warm.lua, counters only where missing), then the reserve and the
    bucket count (SET NX: a live reserve is never overwritten). True if a counter was loaded."""
    rows = dict(SeckillStockBucket.objects.filter(activity_id=activity.pk).values_list("index", "stock_available"))
    by_bucket = defaultdict(list)
    for user_id, units in holders:
        by_bucket[keys.home_bucket(user_id, activity.bucket_count)].append((user_id, units))
    loaded = False
    for index, space in enumerate(keys.spaces(activity.pk, activity.bucket_count)):
        loaded |= stock.warm(
            activity=activity, remaining=rows.get(index, 0), holders=by_bucket[index], space=space, announce=False
        )
    client = stock.redis()
    expire_at = stock.keep_until_ms(activity)
    loaded |= bool(client.set(keys.reserve(activity.pk), activity.stock_available, nx=True, pxat=expire_at))
    client.set(keys.bucket_count(activity.pk), activity.bucket_count, pxat=expire_at)
    stock.announce_units_back(activity.pk)
    return loaded


def _source_keys(activity_id, source):
    if source == RESERVE:
        return keys.reserve(activity_id), keys.transfers_out(activity_id)
    return keys.stock(source), keys.transfers_out(source)


def take(activity_id, *, source, target, want, keep=0):
    """Step 1 alone: (transfer id, units taken). Exposed so tests can stop between the steps."""
    transfer_id = uuid.uuid4().hex
    stock_key, out_key = _source_keys(activity_id, source)
    units = stock.TRANSFER_OUT(stock.redis(), keys=[stock_key, out_key], args=[transfer_id, want, target, keep])
    return transfer_id, int(units)


def finish(activity_id, *, source, transfer_id, target, units):
    """Step 2 and the clean-up: add the units to the target once, then clear the outgoing record.
    Returns 1 if added now, 0 if received before, -1 if the target is not in Redis (record kept)."""
    added = stock.TRANSFER_IN(
        stock.redis(),
        keys=[keys.stock(target), keys.transfers_in(target), keys.meta(target)],
        args=[transfer_id, units, activity_id, source],
    )
    if added >= 0:
        stock.redis().hdel(_source_keys(activity_id, source)[1], transfer_id)
    return int(added)


def transfer(activity_id, *, source, target, want, keep=0):
    """Move up to `want` units from `source` (RESERVE or a bucket) into `target`; units moved."""
    transfer_id, units = take(activity_id, source=source, target=target, want=want, keep=keep)
    if units:
        finish(activity_id, source=source, transfer_id=transfer_id, target=target, units=units)
    return units


def move_in(sale, target, want):
    """Units for a short bucket: a chunk from the reserve, else `want` from the first other
    bucket that has them (looked at in order after the target, so buckets are not all
    drained from bucket 0). Returns the units moved, 0 when the whole sale is empty.

    A source whose node does not answer (its master died, a failover under way) is
    passed over for the next one, so the buckets on the other masters keep selling. That
    is safe: if its step 1 did run and only the answer was lost, the units are recorded as
    outgoing there and the sweep finishes the transfer (`finish_transfers`). An
    unreachable source is no proof that the sale is empty: if no other source had units,
    its error is raised (the customer gets 503, never sold_out)."""
    chunk = max(want, chunk_size(sale.stock_total, sale.bucket_count))
    all_spaces = keys.spaces(sale.id, sale.bucket_count)
    start = all_spaces.index(target)
    others = [all_spaces[(start + step) % len(all_spaces)] for step in range(1, len(all_spaces))]
    unreachable = None
    for source, units_wanted in [(RESERVE, chunk), *((s, want) for s in others)]:
        try:
            transfer_id, units = take(sale.id, source=source, target=target, want=units_wanted)
        except REDIS_ERRORS as exc:
            unreachable = exc
            continue
        if units:
            finish(sale.id, source=source, transfer_id=transfer_id, target=target, units=units)
            return units
    if unreachable is not None:
        raise unreachable
    return 0


def serve(sale, target, quantity, result, retry):
    """purchase.lua said the home bucket is short: move units in and ask again, a few times.

    Each round either moves units (and the retry may sell them, or another customer of
    the bucket got them first) or finds the whole sale empty, which is then the answer."""
    for _ in range(sale.bucket_count + 2):
        if result.outcome not in ("sold_out", "insufficient"):
            return result
        have = result.value if result.outcome == "insufficient" else 0
        if not move_in(sale, target, max(quantity - have, 1)):
            return result
        result = retry()
    return result


def in_flight(activity_id, bucket_count=None):
    """Every outgoing transfer record of a sale: [{source, transfer_id, target, units, at_ms, received}].

    `received` is True when the target already has it (only the clean-up is missing);
    the units of the others are in no counter until they are finished."""
    bucket_count = count(activity_id) if bucket_count is None else bucket_count
    if bucket_count <= 1:
        return []
    client = stock.redis()
    found = []
    for source in [RESERVE, *keys.spaces(activity_id, bucket_count)]:
        for tid, raw in client.hgetall(_source_keys(activity_id, source)[1]).items():
            target, units, at_ms = stock.text(raw).rsplit(":", 2)
            tid = stock.text(tid)
            received = client.hexists(keys.transfers_in(target), tid)
            found.append(
                {
                    "source": source,
                    "transfer_id": tid,
                    "target": target,
                    "units": int(units),
                    "at_ms": int(at_ms),
                    "received": bool(received),
                }
            )
    return found


def units_in_flight(activity_id, bucket_count=None):
    return sum(t["units"] for t in in_flight(activity_id, bucket_count) if not t["received"])


def finish_transfers(activity_id, *, older_than_ms=STALE_TRANSFER_MS):
    """Finish the transfers whose mover stopped between the steps (older than `older_than_ms`).

    Safe beside a mover still at work: step 2 applies a transfer id once. Returns how
    many transfers this call completed (units added now)."""
    transfers = in_flight(activity_id)
    if not transfers:
        return 0
    cutoff = stock.server_time_ms() - older_than_ms
    done = 0
    for t in transfers:
        if t["at_ms"] > cutoff:
            continue
        added = finish(
            activity_id, source=t["source"], transfer_id=t["transfer_id"], target=t["target"], units=t["units"]
        )
        if added == 1:
            done += 1
            log.warning(
                "sale %s: finished transfer %s (%d units to %s)", activity_id, t["transfer_id"], t["units"], t["target"]
            )
    return done

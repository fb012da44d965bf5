"""The order writer: turns the intents of every live sale into orders, a batch per transaction.

Run by `manage.py seckill_writer` (a Procfile process); any number may run, on any
hosts. Why nothing is lost and nothing is written twice:
- an intent leaves the stream only after the COMMIT that wrote it (or recorded its
  refusal and gave its units back): see seckill/intents.py `settle`;
- an intent a writer read and did not settle (it crashed, or was paused) is claimed by
  another writer after intents.CLAIM_IDLE_MS; two writers may then hold one intent,
  and the unique reservation id on the order link lets only one of them write it;
- a database outage (or a batch that ran out of lock-wait retries, Busy) raises out of
  the batch with nothing committed; the intents stay pending and the writer tries again
  after a pause.

A batch is whatever is waiting, up to MAX_BATCH: one intent at a time when purchases
trickle in (the customer's answer is not held back), hundreds per transaction in a
burst, which is where the database's throughput comes from (docs/benchmarks.md).
"""

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from core.errors import Busy
from core.redis_errors import REDIS_ERRORS
from seckill import buckets, cache, intents, keys, metrics, stock
from seckill.models import SeckillActivity
from seckill.services import order_write

log = logging.getLogger(__name__)

MAX_BATCH = 500
BLOCK_MS = 50
SALES_REFRESH_S = 2.0
CLAIM_EVERY_S = 1.0
OUTAGE_PAUSE_S = 1.0


def _iso(value):
    return value.isoformat() if value is not None else None


def _payload_written(intent, written):
    if not intent.waits:
        return None  # SECKILL_ACK=reserved: nobody reads an answer
    return {
        "outcome": intents.WRITTEN,
        "order_id": written.order_id,
        "item_id": written.item_id,
        "created_at": _iso(written.created_at),
        "expires_at": _iso(written.expires_at),
    }


def write_batch(activity_id, batch):
    """Write one batch of intents of one sale and settle them; returns how many were settled.

    `activity_id` is a key space (seckill/keys.py): the sale's, or one bucket's, whose
    orders take their units from that bucket's DB row first."""
    if not batch:
        return 0
    sale = cache.sale_info(keys.sale_of(activity_id))
    started = time.monotonic()
    bucket = keys.bucket_of(activity_id) if sale.bucket_count > 1 else None
    outcome = order_write.intents_write(sale=sale, intents=batch, bucket=bucket)
    settled = [(intent, _payload_written(intent, written)) for intent, written in outcome.written]
    for intent, code, detail, back_on_sale in outcome.refused:
        stock.give_back(activity_id=activity_id, reservation_id=intent.reservation_id, back_on_sale=back_on_sale)
        answer = {"outcome": intents.REFUSED, "code": code, "detail": detail} if intent.waits else None
        settled.append((intent, answer))
    intents.settle(activity_id, settled)
    metrics.writer_batch(len(batch), len(outcome.written), len(outcome.refused), time.monotonic() - started)
    if outcome.refused:
        log.warning("sale %s: %d intent(s) refused by the database", activity_id, len(outcome.refused))
    return len(settled)


def drain(activity_id, *, consumer=None, max_batch=MAX_BATCH):
    """Write every intent of one sale that is waiting now, in batches (tests and benchmarks);
    every bucket's stream of a bucketed sale."""
    consumer = consumer or intents.consumer_name()
    total = 0
    for space in buckets.spaces(activity_id):
        while True:
            batch = intents.read_new(space, consumer=consumer, count=max_batch)
            if not batch:
                break
            total += write_batch(space, batch)
    return total


class Writer:
    """One writer process's loop over the live sales (see the module docstring)."""

    def __init__(self, *, consumer=None, max_batch=MAX_BATCH, block_ms=BLOCK_MS, claim_idle_ms=intents.CLAIM_IDLE_MS):
        self.consumer = consumer or intents.consumer_name()
        self.max_batch = max_batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self._sales, self._sales_at, self._claimed_at = [], 0.0, 0.0
        self._grouped = set()
        self._resting = {}  # key space -> monotonic time until which its stream is not read

    def run(self, stop=None):
        stop = stop or threading.Event()
        log.info("order writer %s started", self.consumer)
        while not stop.is_set():
            try:
                self.tick()
            except (DatabaseError, *REDIS_ERRORS, Busy) as exc:
                # Busy: the batch's transaction ran out of lock-wait retries (core/db.py),
                # rolled back whole; the intents stay pending and are tried again.
                log.warning("order writer %s: %r; trying again in %.0f s", self.consumer, exc, OUTAGE_PAUSE_S)
                close_old_connections()
                stop.wait(OUTAGE_PAUSE_S)
        log.info("order writer %s stopped", self.consumer)

    def tick(self):
        """One pass over the live sales; returns how many intents it settled."""
        sales = self._live_sales()
        if not sales:
            time.sleep(self.block_ms / 1000)
            return 0
        claim = time.monotonic() - self._claimed_at >= CLAIM_EVERY_S
        if claim:
            self._claimed_at = time.monotonic()
        block = self.block_ms if len(sales) == 1 else None
        settled, tried, failure = 0, 0, None
        for activity_id in sales:
            if self._resting.get(activity_id, 0.0) > time.monotonic():
                continue
            tried += 1
            try:
                settled += self._one_stream(activity_id, claim, block)
            except REDIS_ERRORS as exc:
                failure = exc
                self._rest(activity_id, exc)
        if failure is not None and tried == 1 and len(sales) == 1:
            raise failure  # the only stream: run() pauses as for any outage
        if not settled and block is None:
            time.sleep(self.block_ms / 1000)
        return settled

    def _one_stream(self, activity_id, claim, block):
        batch = []
        if claim:
            batch = intents.claim_stale(
                activity_id, consumer=self.consumer, count=self.max_batch, min_idle_ms=self.claim_idle_ms
            )
        if len(batch) < self.max_batch:
            batch += intents.read_new(
                activity_id, consumer=self.consumer, count=self.max_batch - len(batch), block_ms=block
            )
        return write_batch(activity_id, batch)

    def _rest(self, activity_id, exc):
        """One stream's Redis node does not answer (on a cluster: its master died, a failover is
        under way): leave that stream for OUTAGE_PAUSE_S and go on with the others, whose
        customers are waiting for their orders. Safe whatever step failed: entries read and
        not settled stay pending in the group and are read again (claimed) later, and an
        intent whose batch committed before the error is found written and only settled."""
        self._resting[activity_id] = time.monotonic() + OUTAGE_PAUSE_S
        log.warning(
            "order writer %s: sale %s: %r; its stream rests %.0f s", self.consumer, activity_id, exc, OUTAGE_PAUSE_S
        )

    def _live_sales(self):
        """Key spaces of the published sales that may still have intents: live, or ended within the last day."""
        if time.monotonic() - self._sales_at >= SALES_REFRESH_S:
            close_old_connections()
            since = timezone.now() - stock.WRITER_AFTER_END
            self._sales = [  # every bucket's stream of a bucketed sale, a consumer group each
                space
                for pk, count in SeckillActivity.objects.filter(published_at__isnull=False, ends_at__gte=since)
                .order_by("pk")
                .values_list("pk", "bucket_count")
                for space in keys.spaces(pk, count)
            ]
            self._sales_at = time.monotonic()
            for activity_id in set(self._sales) - self._grouped:
                intents.ensure_group(activity_id)
                self._grouped.add(activity_id)
        return self._sales

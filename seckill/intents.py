"""The order intents of a sale: the Redis stream between the purchase and the order writer.

purchase.lua appends one entry per accepted purchase, in the same atomic step that
reserves its units. The writer (seckill/writer.py) reads entries through the consumer
group `writers`, commits their orders, and only then settles them here: it tells the
request still waiting, if any (a list per reservation), acknowledges the entry (XACK) and deletes it
(XDEL), so the stream holds exactly the intents not yet written. An entry a writer
read but never settled stays in the group's pending list, and another writer claims
it after CLAIM_IDLE_MS (XAUTOCLAIM); writing it again is harmless, because the
reservation id is unique on the order link and the writer skips what is written.
"""

import json
import os
import socket
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from redis.exceptions import ResponseError

from seckill import buckets, keys, stock
from seckill.conf import conf
from seckill.models import SeckillActivity

# An entry read but not settled for this long belongs to a writer that died or hangs
# (SECKILL_WRITER_CLAIM_IDLE_MS, 10 s by default; the chaos suite uses 1.5 s), read when
# this module is first imported: a claim made too early is safe anyway, because writing an
# intent a second time is a no-op (unique reservation id), only wasted work.
CLAIM_IDLE_MS = conf().writer_claim_idle_ms
GROUP = keys.WRITER_GROUP
# Outcomes a waiting request can read back.
WRITTEN, REFUSED = "written", "refused"
OUTCOME_TTL_S = 120


@dataclass(frozen=True)
class Intent:
    entry_id: str
    reservation_id: str
    number: str
    user_id: int
    quantity: int
    unit_price: Decimal
    idempotency_key: str | None
    deadline_ms: int
    reserved_ms: int
    waits: bool = True  # a request waits for the writer's answer (SECKILL_ACK=committed)
    delivered_before: bool = False  # claimed from another writer: it may be written already


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value):
    return value.encode() if isinstance(value, str) else value


_PRICES = {}  # the few unit prices a writer sees, parsed once


def _price(raw):
    price = _PRICES.get(raw)
    if price is None:
        if len(_PRICES) > 1000:
            _PRICES.clear()
        price = _PRICES[raw] = Decimal(_text(raw))
    return price


def _intent(entry_id, fields, *, delivered_before=False):
    # Field names and values come as bytes (the client does not decode replies): read by
    # their byte names, since this runs once per order in the writer's loop.
    if b"r" not in fields:  # a client that decodes replies
        fields = {_bytes(k): _bytes(v) for k, v in fields.items()}
    g = fields.get
    key = g(b"k")
    return Intent(
        entry_id=_text(entry_id),
        reservation_id=g(b"r").decode(),
        number=g(b"n").decode(),
        user_id=int(g(b"u")),
        quantity=int(g(b"q")),
        unit_price=_price(g(b"p")),
        idempotency_key=key.decode() if key else None,
        deadline_ms=int(g(b"d")),
        reserved_ms=int(g(b"t")),
        waits=g(b"w", b"1") == b"1",  # entries written before the flag existed: assume a waiter
        delivered_before=delivered_before,
    )


def consumer_name():
    """host:pid, so an operator can tell from XINFO which writer holds what."""
    return f"{socket.gethostname()}:{os.getpid()}"


def ensure_group(activity_id, client=None):
    """Create the sale's stream and consumer group if missing (warm.lua does it too)."""
    try:
        (client or stock.redis()).xgroup_create(keys.intents(activity_id), GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read_new(activity_id, *, consumer, count, block_ms=None, client=None):
    """Up to `count` intents no writer has read yet (they become pending for `consumer`).

    A stream or group that is gone (Redis restarted empty) is created again, empty.
    """
    client = client or stock.redis()
    streams = {keys.intents(activity_id): ">"}
    try:
        answer = client.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_group(activity_id, client)
        answer = client.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
    return [_intent(entry_id, fields) for _stream, entries in (answer or []) for entry_id, fields in entries]


def claim_stale(activity_id, *, consumer, count, min_idle_ms=CLAIM_IDLE_MS, client=None):
    """Intents another writer read and left unsettled for `min_idle_ms`: now ours."""
    try:
        _next, entries, _deleted = (client or stock.redis()).xautoclaim(
            keys.intents(activity_id), GROUP, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return []
    return [_intent(entry_id, fields, delivered_before=True) for entry_id, fields in entries if fields]


def settle(activity_id, outcomes, client=None):
    """After COMMIT: tell each waiting request its outcome, then drop the entries (settle.lua).

    `outcomes` is [(intent, payload)]: payload a dict with at least {"outcome": ...}, or
    None when no request waits for this intent (SECKILL_ACK=reserved). One round trip
    for the whole batch; see seckill/lua/settle.lua for why a crash around it is harmless.
    """
    if not outcomes:
        return
    answer_keys, answers = [], []
    for intent, payload in outcomes:
        if payload is not None:
            answer_keys.append(keys.written(activity_id, intent.reservation_id))
            answers += [intent.reserved_ms, json.dumps(payload)]
    stock.SETTLE(
        client or stock.redis(),
        keys=[keys.intents(activity_id), keys.numbers(activity_id), *answer_keys],
        args=[
            GROUP,
            OUTCOME_TTL_S,
            _wait_window_ms(),
            len(outcomes),
            *[intent.entry_id for intent, _ in outcomes],
            *[intent.number for intent, _ in outcomes],
            *answers,
        ],
    )
    # The reservation entries stay: a re-sync running meanwhile counts an entry whose order
    # its DB snapshot missed as still open (resync.lua); the sweep forgets settled ones.


def _wait_window_ms():
    """How long after its reservation a request may still be waiting for its answer:
    SECKILL_ACK_WAIT_SECONDS and a second of slack for the request's own steps."""
    return int(conf().ack_wait_seconds * 1000) + 1000


def wait_for(activity_id, reservation_id, *, timeout_s, client):
    """The writer's outcome for one intent, or None if it did not come within `timeout_s`."""
    answer = client.blpop([keys.written(activity_id, reservation_id)], timeout=timeout_s)
    return None if answer is None else json.loads(answer[1])


@dataclass(frozen=True)
class Lag:
    waiting: int  # intents accepted and not yet written
    oldest_age_s: float  # age of the oldest of them (0 when none)


def lag(activity_id, client=None):
    """How far the writers are behind on one sale (two commands, one round trip; one per
    bucket of a bucketed sale, whose streams are summed)."""
    client = client or stock.redis()
    if isinstance(activity_id, int) and buckets.count(activity_id) > 1:
        lags = [lag(space, client) for space in buckets.spaces(activity_id)]
        return Lag(sum(x.waiting for x in lags), max(x.oldest_age_s for x in lags))
    stream = keys.intents(activity_id)
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xrange(stream, count=1)
    pipe.time()
    waiting, first, (seconds, micros) = pipe.execute()
    if not waiting or not first:
        return Lag(0, 0.0)
    oldest_ms = int(_text(first[0][0]).split("-")[0])
    now_ms = seconds * 1000 + micros // 1000
    return Lag(int(waiting), max(now_ms - oldest_ms, 0) / 1000)


def waiting_reservations(activity_id, limit=10_000, client=None):
    """Reservation ids whose intent is still in the stream, or None if more than `limit` wait."""
    client = client or stock.redis()
    if isinstance(activity_id, int) and buckets.count(activity_id) > 1:
        found = set()
        for space in buckets.spaces(activity_id):
            part = waiting_reservations(space, limit, client)
            if part is None:
                return None
            found |= part
        return found
    stream = keys.intents(activity_id)
    if client.xlen(stream) > limit:
        return None
    return {_intent(entry_id, fields).reservation_id for entry_id, fields in client.xrange(stream)}


def pending_order(activity_id, number, client=None):
    """(reservation id, customer, quantity, deadline ms) of an order still being written, else None."""
    raw = (client or stock.redis()).hget(keys.numbers(activity_id), number)
    if raw is None:
        return None
    reservation_id, user_id, quantity, deadline_ms = _text(raw).split(":")
    return reservation_id, int(user_id), int(quantity), int(deadline_ms)


def live_lag():
    """{sale id: Lag} for the sales writers are working on (published, ended less than a day ago)."""
    since = timezone.now() - stock.WRITER_AFTER_END
    ids = SeckillActivity.objects.filter(published_at__isnull=False, ends_at__gte=since).values_list("pk", flat=True)
    return {activity_id: lag(activity_id) for activity_id in ids}

"""The sale's live state in Redis: reserve, give back, restock, warm, re-sync, read.

Every function is one Lua script or one read, so each change to the counters is
atomic. Functions named with `activity_id` take a key space (seckill/keys.py): the
sale's id, or one bucket of a bucketed sale; seckill/buckets.py works across buckets.
Redis is the fast gate in front of the database, never the only guard: the database
refuses an oversell or an over-limit order on its own (seckill/models.py).
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django_redis import get_redis_connection
from redis import BlockingConnectionPool, Redis

from core import redis_cluster
from core.lua import LuaScript
from seckill import keys
from seckill.conf import conf

_LUA = Path(__file__).resolve().parent / "lua"

PURCHASE = LuaScript(_LUA / "purchase.lua")
RELEASE = LuaScript(_LUA / "release.lua")
RESTOCK = LuaScript(_LUA / "restock.lua")
WARM = LuaScript(_LUA / "warm.lua")
RESYNC = LuaScript(_LUA / "resync.lua")
SETTLE = LuaScript(_LUA / "settle.lua")
TRANSFER_OUT = LuaScript(_LUA / "transfer_out.lua")
TRANSFER_IN = LuaScript(_LUA / "transfer_in.lua")

# Redis keeps a sale's keys this long after it ends, for reconciliation and late expiries.
KEEP_AFTER_END = timedelta(days=7)
# Writers keep reading a sale's intents this long after it ends (a backlog drains after the end).
WRITER_AFTER_END = timedelta(days=1)


def redis():
    return get_redis_connection("default")


_waiting = {}


def waiting_redis():
    """A client for the one blocking call of a purchase (waiting for the writer's COMMIT).

    Its own pool, with a socket timeout longer than the wait: the shared client's one
    second timeout would cut the wait short. Built once per process, from the same
    connection settings as django-redis's client.
    """
    timeout = conf().ack_wait_seconds + settings.REDIS_SOCKET_TIMEOUT
    slot = (os.getpid(), timeout)  # a new wait bound (tests change it) gets a pool of its own
    client = _waiting.get(slot)
    if client is None and settings.REDIS_CLUSTER_NODES:
        client = _waiting[slot] = redis_cluster.build(
            ",".join(settings.REDIS_CLUSTER_NODES),
            socket_timeout=timeout,
            connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            retries=settings.REDIS_CLUSTER_RETRIES,
            max_connections=settings.CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["max_connections"],
            pool_timeout=timeout,
        )
    if client is None:
        base = redis().connection_pool.connection_kwargs
        pool = BlockingConnectionPool(
            **{k: v for k, v in base.items() if k not in ("socket_timeout",)},
            socket_timeout=timeout,
            max_connections=settings.CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["max_connections"],
            timeout=timeout,
        )
        client = _waiting[slot] = Redis(connection_pool=pool)
    return client


def _ms(dt):
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class Reservation:
    """What purchase.lua answered.

    outcome: ok, replay, sold_out, insufficient, limit_reached, not_started, ended,
    rate_limited or unavailable. value: ok: units left; limit_reached: units held;
    insufficient: units left; not_started: ms to the start; replay: the first answer
    ("ok:<order number>" or "<refusal>:<value>"). number: the order number (ok).
    """

    outcome: str
    value: int | str
    number: str = ""


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


text = _text


def keep_until_ms(activity):
    """When a sale's keys expire (KEEP_AFTER_END after its end), in ms."""
    return _ms(activity.ends_at + KEEP_AFTER_END)


def reserve(
    *,
    sale,
    user_id,
    quantity,
    reservation_id,
    number,
    client_ip=None,
    idempotency_key=None,
    space=None,
    rate_limited=True,
):
    """The whole Redis side of a purchase, one round trip (purchase.lua): rate limits, replay of
    an Idempotency-Key, window, limit, stock, reservation, deadline and the order intent.

    `space`: the customer's home bucket of a bucketed sale (None: the sale's own keys);
    `rate_limited=False` for the retry after units moved in, already counted once."""
    activity_id = sale.id if space is None else space
    order_key = keys.order_idempotency_key(sale.id, idempotency_key)
    ip_limit = conf().rate_limit_per_ip if client_ip and rate_limited else 0
    outcome, value, got_number = PURCHASE(
        redis(),
        keys=[
            keys.meta(activity_id),
            keys.stock(activity_id),
            keys.users(activity_id),
            keys.reservations(activity_id),
            keys.rate_customer(activity_id, user_id),
            keys.rate_ip(activity_id, client_ip or "-"),
            keys.due(activity_id),
            keys.intents(activity_id),
            keys.answers(activity_id),
            keys.numbers(activity_id),
        ],
        args=[
            user_id,
            quantity,
            reservation_id,
            conf().rate_limit_per_customer if rate_limited else 0,
            ip_limit,
            conf().rate_limit_window_ms,
            number,
            keys.answer_field(user_id, idempotency_key),
            str(sale.price),
            order_key or "",
            "1" if conf().ack == "committed" else "0",
            "0" if space is None else "1",
        ],
    )
    outcome, value = _text(outcome), _text(value)
    return Reservation(outcome, value if outcome == "replay" else int(value), _text(got_number))


def give_back(*, activity_id, reservation_id, back_on_sale=True):
    """Undo a reservation whose order was not written. Returns the units given back (0 if none)."""
    return RELEASE(
        redis(),
        keys=[keys.stock(activity_id), keys.users(activity_id), keys.reservations(activity_id), keys.due(activity_id)],
        args=[reservation_id, "1" if back_on_sale else "0", keys.sale_of(activity_id)],
    )


def restock(*, activity_id, order_number, user_id, quantity, reservation_id):
    """Return a cancelled or expired order's units to the sale, at most once per order."""
    return RESTOCK(
        redis(),
        keys=[
            keys.stock(activity_id),
            keys.users(activity_id),
            keys.returned(activity_id),
            keys.reservations(activity_id),
            keys.due(activity_id),
        ],
        args=[order_number, user_id, quantity, reservation_id, keys.sale_of(activity_id)],
    )


def warm(*, activity, remaining, holders, space=None, announce=True):
    """Write metadata; write counters only if the sale is not in Redis yet. True if counters were loaded.

    `space`: one bucket of a bucketed sale (seckill/buckets.py warms each)."""
    space = activity.pk if space is None else space
    args = [
        _ms(activity.starts_at),
        _ms(activity.ends_at),
        activity.per_user_limit,
        "1" if activity.is_enabled else "0",
        activity.stock_total,
        remaining,
        _ms(activity.ends_at + KEEP_AFTER_END),
        activity.payment_minutes * 60_000,
    ]
    for user_id, units in holders:
        args += [user_id, units]
    keys_ = [
        keys.meta(space),
        keys.stock(space),
        keys.users(space),
        keys.reservations(space),
        keys.returned(space),
        keys.due(space),
        keys.intents(space),
        keys.answers(space),
        keys.numbers(space),
    ]
    loaded = WARM(redis(), keys=keys_, args=args) == 1
    if announce:
        announce_units_back(activity.pk)
    return loaded


def resync(*, activity, pool, settled, holders, space=None):
    """Counters from a DB snapshot: (units left in the pool, settled reservation ids, live units
    per customer). Returns (remaining, open units), or None if the sale was never warmed."""
    space = activity.pk if space is None else space
    args = [pool, _ms(activity.ends_at + KEEP_AFTER_END), len(settled), *settled]
    for user_id, units in holders:
        args += [user_id, units]
    keys_ = [keys.meta(space), keys.stock(space), keys.users(space), keys.reservations(space)]
    remaining, open_units = RESYNC(redis(), keys=keys_, args=args)
    if remaining == -1:
        return None
    announce_units_back(activity.pk)
    return remaining, open_units


def announce_units_back(activity_id):
    """Tell every web process that this sale may have units again (seckill/cache.py listens)."""
    redis().publish(keys.UNITS_BACK_CHANNEL, activity_id)


def remaining(activity_id):
    """Units left in Redis, or None when the sale is not in Redis (never warmed or wiped).

    A bucketed sale counts its reserve and every bucket (units in flight between two of
    them are in neither; reconciliation counts those, seckill/buckets.py `in_flight`)."""
    value = redis().get(keys.stock(activity_id))
    if value is not None:
        return int(value)
    count = redis().get(keys.bucket_count(activity_id))
    if count is None:
        return None
    return _bucketed_remaining({activity_id: int(count)})[activity_id]


def remaining_many(activity_ids):
    """{id: units left or None} in one round trip (one per slot on a cluster: each sale has its own).

    A sale with no stock key may be bucketed: only for those a second MGET reads the bucket
    counts, and a third the reserves and buckets; a one-bucket sale costs the one MGET."""
    ids = list(activity_ids)
    if not ids:
        return {}
    values = redis_cluster.mget(redis(), [keys.stock(i) for i in ids])
    found = {i: (None if v is None else int(v)) for i, v in zip(ids, values, strict=True)}
    missing = [i for i, v in found.items() if v is None]
    if missing:
        counts = redis_cluster.mget(redis(), [keys.bucket_count(i) for i in missing])
        found.update(_bucketed_remaining({i: int(c) for i, c in zip(missing, counts, strict=True) if c is not None}))
    return found


def _bucketed_remaining(counts):
    """{id: reserve + every bucket, or None if any of them is missing} for {id: bucket count}."""
    if not counts:
        return {}
    wanted = []
    for activity_id, count in counts.items():
        wanted += [keys.reserve(activity_id)] + [keys.stock(s) for s in keys.spaces(activity_id, count)]
    values = iter(redis_cluster.mget(redis(), wanted))
    out = {}
    for activity_id, count in counts.items():
        parts = [next(values) for _ in range(count + 1)]
        out[activity_id] = None if any(p is None for p in parts) else sum(int(p) for p in parts)
    return out


@dataclass(frozen=True)
class OpenReservation:
    reservation_id: str
    user_id: int
    quantity: int
    reserved_ms: int


def reservations(activity_id, batch=500):
    """Every reservation entry of a sale, read with HSCAN so a big hash never blocks Redis."""
    for rid, entry in redis().hscan_iter(keys.reservations(activity_id), count=batch):
        user_id, quantity, reserved_ms = entry.decode().split(":")
        yield OpenReservation(rid.decode(), int(user_id), int(quantity), int(reserved_ms))


def forget_reservations(activity_id, reservation_ids):
    """Drop settled entries (their order exists) from the reservation hash."""
    if reservation_ids:
        redis().hdel(keys.reservations(activity_id), *reservation_ids)


def due_reservations(activity_id, *, until_ms, batch=500):
    """Reservation ids whose payment deadline is at or before `until_ms`, oldest first."""
    return [rid.decode() for rid in redis().zrangebyscore(keys.due(activity_id), "-inf", until_ms, 0, batch)]


def postpone(activity_id, deadlines):
    """{reservation id: deadline ms}: move entries whose order has a later deadline than their reservation."""
    if deadlines:
        redis().zadd(keys.due(activity_id), deadlines, xx=True)


def forget_due(activity_id, reservation_ids):
    if reservation_ids:
        redis().zrem(keys.due(activity_id), *reservation_ids)


def still_reserved(activity_id, reservation_ids):
    """The ids among `reservation_ids` whose reservation is still open in Redis (one HMGET)."""
    ids = list(reservation_ids)
    if not ids:
        return set()
    found = redis().hmget(keys.reservations(activity_id), ids)
    return {rid for rid, entry in zip(ids, found, strict=True) if entry is not None}


def held_by(activity_id, user_id):
    value = redis().hget(keys.users(activity_id), user_id)
    return int(value or 0)


def server_time_ms():
    seconds, micros = redis().time()
    return seconds * 1000 + micros // 1000


def persistence():
    """{"appendonly", "appendfsync"} of the sale Redis, or None if it will not say (CONFIG disabled).

    On a cluster every master is asked: "yes" only if all of them keep an append-only file.
    """
    try:
        found = [node.config_get("append*") for node in redis_cluster.primaries(redis())]
    except Exception:  # noqa: BLE001 - managed Redis services often refuse CONFIG; unknown is an answer
        return None
    texts = [{_text(k): _text(v) for k, v in each.items()} for each in found]
    if len(texts) == 1:
        return {"appendonly": texts[0].get("appendonly"), "appendfsync": texts[0].get("appendfsync")}
    fsync = sorted({str(t.get("appendfsync")) for t in texts})
    return {
        "appendonly": "yes" if all(t.get("appendonly") == "yes" for t in texts) else "no",
        "appendfsync": fsync[0] if len(fsync) == 1 else ",".join(fsync),
    }


def keeps_acknowledgements():
    """False when SECKILL_ACK=reserved runs on a Redis that keeps nothing on disk (or will not tell)."""
    if conf().ack != "reserved":
        return True
    found = persistence()
    return bool(found and found["appendonly"] == "yes")

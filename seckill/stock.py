"""The sale's live state in Redis: reserve, give back, restock, warm, re-sync, read.

Every function is one Lua script or one read, so each change to the counters is
atomic. Redis is the fast gate in front of the database, never the only guard: the
database refuses an oversell or an over-limit order on its own (seckill/models.py).
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django_redis import get_redis_connection

from core.lua import LuaScript
from seckill import keys
from seckill.conf import conf

_LUA = Path(__file__).resolve().parent / "lua"

PURCHASE = LuaScript(_LUA / "purchase.lua")
RELEASE = LuaScript(_LUA / "release.lua")
RESTOCK = LuaScript(_LUA / "restock.lua")
WARM = LuaScript(_LUA / "warm.lua")
RESYNC = LuaScript(_LUA / "resync.lua")

# Redis keeps a sale's keys this long after it ends, for reconciliation and late expiries.
KEEP_AFTER_END = timedelta(days=7)


def redis():
    return get_redis_connection("default")


def _ms(dt):
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class Reservation:
    outcome: str  # ok, sold_out, insufficient, limit_reached, not_started, ended, rate_limited, unavailable
    value: int  # ok: units left; limit_reached: units held; insufficient: units left; not_started: ms to start


def reserve(*, activity_id, user_id, quantity, reservation_id, client_ip=None):
    """One round trip: rate limits, sale window, per-customer limit, stock check and decrement."""
    ip_limit = conf().rate_limit_per_ip if client_ip else 0
    outcome, value = PURCHASE(
        redis(),
        keys=[
            keys.meta(activity_id),
            keys.stock(activity_id),
            keys.users(activity_id),
            keys.reservations(activity_id),
            keys.rate_customer(activity_id, user_id),
            keys.rate_ip(activity_id, client_ip or "-"),
            keys.due(activity_id),
        ],
        args=[
            user_id,
            quantity,
            reservation_id,
            conf().rate_limit_per_customer,
            ip_limit,
            conf().rate_limit_window_ms,
        ],
    )
    return Reservation(outcome.decode() if isinstance(outcome, bytes) else outcome, int(value))


def give_back(*, activity_id, reservation_id, back_on_sale=True):
    """Undo a reservation whose order was not written. Returns the units given back (0 if none)."""
    return RELEASE(
        redis(),
        keys=[keys.stock(activity_id), keys.users(activity_id), keys.reservations(activity_id), keys.due(activity_id)],
        args=[reservation_id, "1" if back_on_sale else "0"],
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
        args=[order_number, user_id, quantity, reservation_id],
    )


def warm(*, activity, remaining, holders):
    """Write metadata; write counters only if the sale is not in Redis yet. True if counters were loaded."""
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
        keys.meta(activity.pk),
        keys.stock(activity.pk),
        keys.users(activity.pk),
        keys.reservations(activity.pk),
        keys.returned(activity.pk),
        keys.due(activity.pk),
    ]
    return WARM(redis(), keys=keys_, args=args) == 1


def resync(*, activity, pool, settled, holders):
    """Counters from a DB snapshot: (units left in the pool, settled reservation ids, live units
    per customer). Returns (remaining, open units), or None if the sale was never warmed."""
    args = [pool, _ms(activity.ends_at + KEEP_AFTER_END), len(settled), *settled]
    for user_id, units in holders:
        args += [user_id, units]
    keys_ = [keys.meta(activity.pk), keys.stock(activity.pk), keys.users(activity.pk), keys.reservations(activity.pk)]
    remaining, open_units = RESYNC(redis(), keys=keys_, args=args)
    return None if remaining == -1 else (remaining, open_units)


def remaining(activity_id):
    """Units left in Redis, or None when the sale is not in Redis (never warmed or wiped)."""
    value = redis().get(keys.stock(activity_id))
    return None if value is None else int(value)


def remaining_many(activity_ids):
    """{id: units left or None} in one round trip."""
    ids = list(activity_ids)
    if not ids:
        return {}
    values = redis().mget([keys.stock(i) for i in ids])
    return {i: (None if v is None else int(v)) for i, v in zip(ids, values, strict=True)}


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
    """{reservation id: deadline ms}: move entries whose order got a later deadline (async)."""
    if deadlines:
        redis().zadd(keys.due(activity_id), deadlines, xx=True)


def forget_due(activity_id, reservation_ids):
    if reservation_ids:
        redis().zrem(keys.due(activity_id), *reservation_ids)


def held_by(activity_id, user_id):
    value = redis().hget(keys.users(activity_id), user_id)
    return int(value or 0)


def server_time_ms():
    seconds, micros = redis().time()
    return seconds * 1000 + micros // 1000

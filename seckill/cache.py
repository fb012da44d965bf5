"""What a web process remembers between requests: sale settings and "sold out" flags.

Both are in-process dictionaries with a short lifetime, so the hot path answers
without a database query, and once a sale is sold out without any network call at all.
Staleness is bounded and harmless: the Lua script re-checks the window and the stock
on every purchase that gets past the flags, and a flag expires after
SECKILL_SOLD_OUT_RECHECK_SECONDS so units returned by an expired order sell again.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from seckill import keys, stock
from seckill.conf import conf
from seckill.models import SeckillActivity


@dataclass(frozen=True)
class SaleInfo:
    id: int
    product_id: int
    product_slug: str
    product_name: str
    title: str
    price: Decimal
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    payment_minutes: int
    is_enabled: bool
    is_published: bool
    bucket_count: int = 1
    stock_total: int = 0


log = logging.getLogger(__name__)

_sales = {}  # id -> (valid_until, SaleInfo | None)
_sold_out_until = {}  # id -> monotonic deadline


def sale_info(activity_id):
    """The sale's settings, from memory when fresh; None if there is no such sale."""
    now = time.monotonic()
    cached = _sales.get(activity_id)
    if cached and cached[0] > now:
        return cached[1]
    row = (
        SeckillActivity.objects.filter(pk=activity_id)
        .values_list(
            "product_id",
            "product__slug",
            "product__name",
            "title",
            "price",
            "per_user_limit",
            "starts_at",
            "ends_at",
            "payment_minutes",
            "is_enabled",
            "published_at",
            "bucket_count",
            "stock_total",
        )
        .first()
    )
    info = None
    if row:
        product_id, slug, name, title, price, limit, starts, ends, payment, enabled, published, buckets, total = row
        info = SaleInfo(
            activity_id,
            product_id,
            slug,
            name,
            title,
            price,
            limit,
            starts,
            ends,
            payment,
            enabled,
            bool(published),
            buckets,
            total,
        )
    _sales[activity_id] = (now + conf().meta_cache_seconds, info)
    return info


def is_known(activity_id):
    """True if this process has loaded the sale's settings once (fresh or not): no lookup, a dict read."""
    cached = _sales.get(activity_id)
    return cached is not None and cached[1] is not None


def forget_sale(activity_id):
    _sales.pop(activity_id, None)
    _sold_out_until.pop(activity_id, None)


def mark_sold_out(activity_id):
    _listen_for_units_back()
    _sold_out_until[activity_id] = time.monotonic() + conf().sold_out_recheck_seconds


def units_back(activity_id):
    """Units of the sale are on sale again: stop answering "sold out" from memory."""
    _sold_out_until.pop(activity_id, None)


# --- units-back messages ------------------------------------------------------------------
# A flag is only ever set by mark_sold_out, so the listener starts there, in the process
# (a gunicorn worker, after the fork) that needs it. It is a daemon thread with its own
# connection, subscribed to the channel release.lua, restock.lua, warm and re-sync publish
# on; on any message it clears that sale's flag, and if its connection breaks it clears
# every flag (a message may have been missed) and subscribes again.

_listener = {"pid": None}
_listener_lock = threading.Lock()


def _listen_for_units_back():
    if _listener["pid"] == os.getpid():
        return
    with _listener_lock:
        if _listener["pid"] == os.getpid():
            return
        _listener["pid"] = os.getpid()
        threading.Thread(target=_listen, name="seckill-units-back", daemon=True).start()


def _listen():
    while True:
        try:
            pubsub = stock.redis().pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(keys.UNITS_BACK_CHANNEL)
            while True:
                # get_message waits with select(), so the client's short socket timeout
                # does not cut an idle subscription every second.
                message = pubsub.get_message(timeout=0.5)
                if message is not None:
                    try:
                        units_back(int(message["data"]))
                    except (TypeError, ValueError):
                        continue
        except Exception:
            log.warning("units-back listener lost its Redis connection; subscribing again", exc_info=True)
            _sold_out_until.clear()
            time.sleep(1.0)


def is_sold_out(activity_id):
    until = _sold_out_until.get(activity_id)
    return until is not None and until > time.monotonic()


def clear():
    _sales.clear()
    _sold_out_until.clear()

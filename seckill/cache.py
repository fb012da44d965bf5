"""What a web process remembers between requests: sale settings and "sold out" flags.

Both are in-process dictionaries with a short lifetime, so the hot path answers
without a database query, and once a sale is sold out without any network call at all.
Staleness is bounded and harmless: the Lua script re-checks the window and the stock
on every purchase that gets past the flags, and a flag expires after
SECKILL_SOLD_OUT_RECHECK_SECONDS so units returned by an expired order sell again.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

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
        )
        .first()
    )
    info = None
    if row:
        product_id, slug, name, title, price, limit, starts, ends, payment, enabled, published = row
        info = SaleInfo(
            activity_id, product_id, slug, name, title, price, limit, starts, ends, payment, enabled, bool(published)
        )
    _sales[activity_id] = (now + conf().meta_cache_seconds, info)
    return info


def forget_sale(activity_id):
    _sales.pop(activity_id, None)
    _sold_out_until.pop(activity_id, None)


def mark_sold_out(activity_id):
    _sold_out_until[activity_id] = time.monotonic() + conf().sold_out_recheck_seconds


def is_sold_out(activity_id):
    until = _sold_out_until.get(activity_id)
    return until is not None and until > time.monotonic()


def clear():
    _sales.clear()
    _sold_out_until.clear()

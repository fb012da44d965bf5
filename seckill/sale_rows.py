"""The staff sale list's live columns (seckill/admin.py): the same text in the page and in
the JSON its script polls every 5 s (seckill/static/seckill/sale_list.js).

For a page of sales: one query (the sales with their live and paid order counts), one
MGET for the units left in Redis, and one pipelined round trip per sale the writers may
still be working on (published, ended less than a day ago) for its writer lag. Redis
being away never breaks the list: those cells say "not loaded" / "unknown".
"""

from dataclasses import asdict, dataclass

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format

from core.redis_errors import REDIS_ERRORS
from orders.models import Order
from seckill import intents, stock
from seckill.models import SeckillActivity

MAX_ROWS = 200  # the live JSON answers for at most this many sales at once


def with_order_counts(queryset):
    live = Q(orders__order__status__in=Order.LIVE_STATUSES)
    return queryset.annotate(
        _live_orders=Count("orders", filter=live),
        _paid_orders=Count("orders", filter=Q(orders__order__status=Order.Status.PAID)),
    )


@dataclass(frozen=True)
class Row:
    status: str  # upcoming, live, sold_out, ended
    status_label: str
    left: str  # units left in Redis, of the total
    pool: str  # units left in the DB pool
    waiting: str  # accepted purchases the writers have not committed yet
    live: str  # live orders (reserved, waiting for payment, or paid)
    paid: str  # paid orders


def _remaining(activities):
    try:
        return stock.remaining_many(a.pk for a in activities)
    except REDIS_ERRORS:
        return {}


def _waiting(activity, now):
    if not activity.is_published or activity.ends_at + stock.WRITER_AFTER_END < now:
        return "-"
    try:
        lag = intents.lag(activity.pk)
    except REDIS_ERRORS:
        return "unknown"
    return f"{lag.waiting} ({lag.oldest_age_s:.1f} s)" if lag.waiting else "0"


def rows(activities):
    """{sale id: Row} for sales read with `with_order_counts`."""
    activities = list(activities)
    remaining = _remaining(activities)
    now = timezone.now()
    found = {}
    for activity in activities:
        left = remaining.get(activity.pk)
        status = activity.status_at(now, remaining=left)
        found[activity.pk] = Row(
            status=status,
            status_label=SeckillActivity.Status(status).label,
            left="not loaded" if left is None else f"{left} of {activity.stock_total}",
            pool=f"DB pool {activity.stock_available}",
            waiting=_waiting(activity, now),
            live=f"{getattr(activity, '_live_orders', 0)} live",
            paid=f"{getattr(activity, '_paid_orders', 0)} paid",
        )
    return found


def live_json(activity_ids):
    """What the sale list's script polls: {"sales": {id: Row fields}}."""
    ids = [i for i in activity_ids if i > 0][:MAX_ROWS]
    activities = with_order_counts(SeckillActivity.objects.filter(pk__in=ids))
    return {"sales": {str(pk): asdict(row) for pk, row in rows(activities).items()}}


def window(activity):
    """(start, end) in a few characters, in the shop's time zone: ("1 Dec 20:15", "21:15") on
    one day, ("1 Dec 20:15", "2 Dec 08:00") across midnight, the year too when not this one's."""
    starts, ends = timezone.localtime(activity.starts_at), timezone.localtime(activity.ends_at)
    this_year = timezone.localtime().year
    start = date_format(starts, "j M H:i" if starts.year == this_year else "j M Y H:i")
    if ends.date() == starts.date():
        return start, date_format(ends, "H:i")
    return start, date_format(ends, "j M H:i" if ends.year == this_year else "j M Y H:i")

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from core.errors import NotFound
from orders.models import Order
from seckill import stock
from seckill.models import SeckillActivity, SeckillOrder


@dataclass(frozen=True)
class SaleView:
    """A sale as customers see it: DB settings plus the live count from Redis."""

    activity: SeckillActivity
    remaining: int
    status: str
    server_time: datetime

    @property
    def server_time_ms(self):
        return int(self.server_time.timestamp() * 1000)

    @property
    def starts_ms(self):
        return int(self.activity.starts_at.timestamp() * 1000)

    @property
    def ends_ms(self):
        return int(self.activity.ends_at.timestamp() * 1000)

    @property
    def sold(self):
        return max(0, self.activity.stock_total - self.activity.stock_returned - self.remaining)

    @property
    def sold_fraction(self):
        total = self.activity.stock_total
        return 0 if not total else round(100 * self.sold / total)


def _remaining(activity, live):
    if live is not None:
        return max(live, 0)
    return activity.stock_available if activity.published_at else activity.stock_total


def sale_views(activities, now=None):
    activities = list(activities)
    now = now or timezone.now()
    try:
        live = stock.remaining_many([a.pk for a in activities])
    except Exception:  # noqa: BLE001 - pages still show the DB figures while Redis is down
        live = {}
    views = []
    for activity in activities:
        remaining = _remaining(activity, live.get(activity.pk))
        views.append(SaleView(activity, remaining, activity.status_at(now, remaining=remaining), now))
    return views


def sale_list_visible(now=None):
    """Enabled sales that are live, upcoming, or ended within the last day."""
    now = now or timezone.now()
    return (
        SeckillActivity.objects.filter(is_enabled=True, ends_at__gt=now - timedelta(days=1))
        .select_related("product")
        .order_by("starts_at")
    )


PAST_SALES_SHOWN = 12


def sale_groups(now=None):
    """The flash-sales page: live (sold-out included), upcoming and the latest past sales.

    Past means ended within the last 30 days; sales disabled before they were published
    never opened and are not shown.
    """
    now = now or timezone.now()
    current = list(sale_list_visible(now).filter(ends_at__gt=now))
    past = list(
        SeckillActivity.objects.filter(ends_at__lte=now, ends_at__gt=now - timedelta(days=30))
        .exclude(is_enabled=False, published_at__isnull=True)
        .select_related("product")
        .order_by("-ends_at")[:PAST_SALES_SHOWN]
    )
    views = sale_views(current + past, now)
    return {
        "live": [v for v in views if v.status in ("live", "sold_out")],
        "upcoming": [v for v in views if v.status == "upcoming"],
        "past": [v for v in views if v.status == "ended"],
    }


@dataclass(frozen=True)
class Holding:
    """What one customer holds of one sale: units in live orders and the newest such order."""

    units: int = 0
    limit: int = 1
    order: Order | None = None

    @property
    def reached(self):
        return self.units >= self.limit


def customer_holding(activity, *, user):
    """Read from the orders themselves, so a cancelled or expired order frees the limit at once."""
    if not user.is_authenticated:
        return Holding(limit=activity.per_user_limit)
    links = list(
        SeckillOrder.objects.filter(activity_id=activity.pk, user=user, order__status__in=Order.LIVE_STATUSES)
        .select_related("order")
        .order_by("-created_at")
    )
    return Holding(
        units=sum(link.quantity for link in links),
        limit=activity.per_user_limit,
        order=links[0].order if links else None,
    )


def sale_get(*, activity_id):
    activity = SeckillActivity.objects.select_related("product").filter(pk=activity_id).first()
    if activity is None or not (activity.is_enabled or activity.published_at):
        raise NotFound("No such sale.")
    return sale_views([activity])[0]

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from core.errors import NotFound
from seckill import stock
from seckill.models import SeckillActivity, SeckillTicket


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
    def sold_fraction(self):
        total = self.activity.stock_total
        return 0 if not total else round(100 * (total - self.remaining) / total)


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


def sale_get(*, activity_id):
    activity = SeckillActivity.objects.select_related("product").filter(pk=activity_id).first()
    if activity is None or not (activity.is_enabled or activity.published_at):
        raise NotFound("No such sale.")
    return sale_views([activity])[0]


def ticket_get_for_user(*, user, ticket):
    """A ticket is "<activity id>-<reservation id>"; another customer's ticket is a 404."""
    _, _, reservation_id = ticket.partition("-")
    found = SeckillTicket.objects.select_related("order").filter(pk=reservation_id, user=user).first()
    if found is None:
        raise NotFound("No such ticket.")
    return found

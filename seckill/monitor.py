"""The live sale monitor for staff: one admin page per sale, fed by a JSON snapshot a second.

The page (templates/admin/seckill/monitor.html, seckill/static/seckill/monitor.js) polls
`snapshot` every second and draws the last minutes itself (inline SVG, no library, no
inline script: the CSP of config/settings.py applies). Both views sit behind the admin's
own staff check (SeckillActivityAdmin.get_urls wraps them in admin_view).

Each figure is read, never derived from the invariants it is meant to let staff watch:
units left in Redis and in the DB pool, orders written, accepted purchases waiting for
the order writer and the oldest one's age (seckill/intents.py lag), open reservations,
and the purchases the database refused, by code. Orders per second is the client's
difference of two snapshots. Redis-side refusals (sold out at the gate, rate limited)
are not counted anywhere on the purchase path yet, so they are not shown.

A snapshot is a handful of indexed queries and three Redis round trips; open
reservations are counted only while the sale's reservation hash is small (the sweep
prunes settled entries every minute), so a big sale's monitor never HSCANs a large hash
once a second.
"""

from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from core.redis_errors import REDIS_ERRORS
from orders.models import Order
from seckill import intents, keys, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillRefusal
from seckill.services import open_reservations

MAX_RESERVATIONS_COUNTED = 5000


def _redis_figures(activity_id):
    try:
        client = stock.redis()
        remaining = stock.remaining(activity_id)
        lag = intents.lag(activity_id, client=client)
        entries = client.hlen(keys.reservations(activity_id))
        open_units = None
        if entries <= MAX_RESERVATIONS_COUNTED:
            open_units = sum(e.quantity for e in open_reservations(activity_id)[0])
        return {
            "redis_ok": True,
            "redis_remaining": remaining,
            "writer_waiting": lag.waiting,
            "writer_oldest_s": round(lag.oldest_age_s, 3),
            "open_reservation_units": open_units,
            "server_time_ms": stock.server_time_ms(),
        }
    except REDIS_ERRORS:  # the monitor keeps showing the DB side while Redis is down
        return {"redis_ok": False, "redis_remaining": None, "writer_waiting": None, "writer_oldest_s": None}


def snapshot(activity_id):
    activity = get_object_or_404(SeckillActivity, pk=activity_id)
    orders = SeckillOrder.objects.filter(activity_id=activity_id).aggregate(
        orders=Count("pk"),
        live=Count("pk", filter=Q(order__status__in=Order.LIVE_STATUSES)),
        paid=Count("pk", filter=Q(order__status=Order.Status.PAID)),
    )
    refusals = dict(
        SeckillRefusal.objects.filter(activity_id=activity_id)
        .values("code")
        .annotate(n=Count("pk"))
        .values_list("code", "n")
    )
    figures = _redis_figures(activity_id)
    return {
        "id": activity.pk,
        "title": activity.title,
        "status": activity.status_at(remaining=figures["redis_remaining"]),
        "stock_total": activity.stock_total,
        "db_available": activity.stock_available,
        "stock_returned": activity.stock_returned,
        "orders": orders["orders"],
        "live_orders": orders["live"],
        "paid_orders": orders["paid"],
        "refused": refusals,
        **figures,
    }


@never_cache
def monitor_data(request, activity_id):
    return JsonResponse(snapshot(activity_id))


def monitor_page(admin_site, request, activity_id):
    activity = get_object_or_404(SeckillActivity, pk=activity_id)
    context = {
        **admin_site.each_context(request),
        "title": f"Live monitor: {activity.title}",
        "activity": activity,
        "opts": SeckillActivity._meta,
    }
    return TemplateResponse(request, "admin/seckill/monitor.html", context)

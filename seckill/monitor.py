"""The live sale monitor for staff: one admin page per sale, fed by a JSON snapshot a second.

The page (templates/admin/seckill/monitor.html, seckill/static/seckill/monitor.js) polls
`snapshot` every second and draws the last minutes itself (inline SVG, no library, no
inline script: the CSP of config/settings.py applies). Both views sit behind the admin's
own staff check (SeckillActivityAdmin.get_urls wraps them in admin_view).

Each figure is read, never derived from the invariants it is meant to let staff watch:
units left in Redis and in the DB pool, orders written, accepted purchases waiting for
the order writer and the oldest one's age (seckill/intents.py lag), open reservations,
and the purchases the database refused, by code. Orders per second is the client's
difference of two snapshots.

The answers customers got, by code (`answers`: ok, confirming, and every refusal,
including those purchase.lua decides in Redis: sold_out, limit_reached, rate_limited,
not_started, ended), and the purchase path's p50/p99 over the last minute come from the
purchase path's own prometheus_client counter and histogram (seckill/telemetry.py),
added up over every process. The histogram's counts only ever grow, so the last minute
is the difference between now and a reading about 60 s old: each process keeps the
readings its own snapshots took (a few a minute per sale, dropped after 90 s), and since
each reading is of every process's totals, whichever worker answers a poll finds a valid
start. The quantile is interpolated inside its bucket (BUCKETS), so it is as exact as the
buckets are fine: within 0.5-1 ms below 10 ms, coarser above.

A snapshot is a handful of indexed queries and three Redis round trips; open
reservations are counted only while the sale's reservation hash is small (the sweep
prunes settled entries every minute), so a big sale's monitor never HSCANs a large hash
once a second.
"""

import threading
import time
from collections import deque

from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from core.redis_errors import REDIS_ERRORS
from orders.models import Order
from seckill import buckets, intents, keys, stock, telemetry
from seckill.models import SeckillActivity, SeckillOrder, SeckillRefusal
from seckill.services import open_reservations

MAX_RESERVATIONS_COUNTED = 5000
LATENCY_WINDOW_S = 60.0
_readings = {}  # sale id -> deque of (monotonic s, cumulative bucket counts), this process's
_readings_lock = threading.Lock()


def _latency(activity_id, buckets, now=None):
    """p50/p99 in ms over the last minute (or since this process first read the sale, if that
    is more recent), from the difference of the cumulative bucket counts."""
    now = time.monotonic() if now is None else now
    with _readings_lock:
        readings = _readings.setdefault(activity_id, deque())
        while len(readings) > 1 and now - readings[1][0] >= LATENCY_WINDOW_S:
            readings.popleft()  # keep one reading at least a window old: the start
        start = readings[0] if readings else None
        readings.append((now, buckets))
        while len(readings) > 1 and now - readings[0][0] > LATENCY_WINDOW_S * 1.5:
            readings.popleft()
    if start is None:
        return {"p50_ms": None, "p99_ms": None, "purchases": None, "window_s": 0}
    window = [b - a for a, b in zip(start[1], buckets, strict=True)]
    if min(window) < 0:  # the metrics were emptied (a restart): start again from here
        window = list(buckets)

    def ms(q):
        value = telemetry.quantile(q, window)
        return None if value is None else round(value * 1000, 2)

    return {"p50_ms": ms(0.5), "p99_ms": ms(0.99), "purchases": window[-1], "window_s": round(now - start[0])}


def _redis_figures(activity_id):
    try:
        client = stock.redis()
        remaining = stock.remaining(activity_id)
        lag = intents.lag(activity_id, client=client)
        entries = sum(client.hlen(keys.reservations(space)) for space in buckets.spaces(activity_id))
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
    totals = telemetry.purchase_totals(activity_id)
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
        "answers": dict(sorted(totals.outcomes.items())),
        "latency": _latency(activity_id, totals.buckets),
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

"""`/healthz`: is this instance able to sell? 200 when the DB and Redis both answer, else 503.

It also shows, per sale the order writers are working on, how many accepted purchases
wait to be written and for how long, whether the sale Redis keeps acknowledgements on
disk (docs/architecture.md, "Durability"), and the latest reconciliation result (open discrepancies by kind, last run)
for whoever watches the shop. That is information, not health: a discrepancy never
turns the answer into a 503, and if it cannot be read the answer says so and stays 200.
"""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection

from core import redis_cluster
from reconciliation.selectors import monitoring_summary
from seckill import intents, stock


def _probe(check):
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is reported
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


def _db():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis():
    for node in redis_cluster.primaries(get_redis_connection("default")):  # every master of a cluster
        node.ping()


def _sales():
    """The order writers' lag per sale and whether the sale Redis keeps acknowledgements."""
    try:
        lags = intents.live_lag()
        return {
            "ack": settings.SECKILL_ACK,
            "redis_persistence": stock.persistence(),
            "acknowledgements_durable": stock.keeps_acknowledgements(),
            "writer_lag": {
                str(k): {"waiting": v.waiting, "oldest_age_s": round(v.oldest_age_s, 3)} for k, v in lags.items()
            },
        }
    except Exception as exc:  # noqa: BLE001 - information only, like the reconciliation summary
        return {"status": "unknown", "error": type(exc).__name__}


def _reconciliation():
    try:
        return monitoring_summary()
    except Exception as exc:  # noqa: BLE001 - extra information only; never a reason for a 503
        return {"status": "unknown", "error": type(exc).__name__}


@never_cache
def healthz(request):
    checks = {"db": _probe(_db), "redis": _probe(_redis)}
    healthy = all(c["status"] == "ok" for c in checks.values())
    body = {"status": "ok" if healthy else "down", **checks}
    if checks["db"]["status"] == "ok":  # with the DB down, a second query would only wait for its timeout
        body["reconciliation"] = _reconciliation()
    if healthy:
        body["sales"] = _sales()
    return JsonResponse(body, status=200 if healthy else 503)

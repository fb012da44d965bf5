"""`/metrics`: Prometheus text for staff, or for a scraper that sends METRICS_TOKEN.

Lock metrics (locks/metrics.py), reconciliation results
(reconciliation/metrics.py) and anything else registered with prometheus_client
land here. Under gunicorn, set PROMETHEUS_MULTIPROC_DIR to an empty directory before
the workers start, and this view adds up every worker's values; without it each scrape
sees only the worker that answered it (the reconciliation gauges are read from the
database, so they are the same whichever worker answers).
"""

import hmac
import os

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

import locks.metrics  # noqa: F401 - registers the lock metrics before the first scrape
from reconciliation.metrics import registry as reconciliation_registry


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _may_read(request):
    if request.user.is_authenticated and request.user.is_staff:
        return True
    expected = getattr(settings, "METRICS_TOKEN", "")
    supplied = request.headers.get("Authorization", "")
    return bool(expected) and hmac.compare_digest(supplied.encode(), f"Bearer {expected}".encode())


@never_cache
def metrics(request):
    if not _may_read(request):
        return HttpResponseForbidden("Metrics are for staff.", content_type="text/plain")
    # Reconciliation gauges come from a registry of their own (read from the DB at scrape
    # time); the text format allows two blocks of distinct metrics one after the other.
    body = generate_latest(_registry()) + generate_latest(reconciliation_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)

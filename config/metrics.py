"""`/metrics`: Prometheus text for staff, or for a scraper that sends METRICS_TOKEN.

Lock metrics (locks/metrics.py), the order writer's (seckill/metrics.py), reconciliation
results (reconciliation/metrics.py) and anything else registered with prometheus_client
land here.

Several processes count: gunicorn's workers, Celery, the order writers. With
PROMETHEUS_MULTIPROC_DIR set (an empty directory before they start: `make run` creates
it fresh) each process writes its values to files there, and this view serves a
registry that adds them all up (prometheus_client's multiprocess mode), so every scrape
reads the same totals whichever worker answers. Collectors that read their values at
scrape time are registered on that registry too: the order writer's lag (from Redis),
and the `process_*` figures of the gunicorn master (the workers' parent), so
`process_start_time_seconds` is one value, not the answering worker's. Without the
variable (tests, `manage.py runserver`) the default registry of this process is served.
"""

import functools
import hmac
import os

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

import locks.metrics  # noqa: F401 - registers the lock metrics before the first scrape
from reconciliation.metrics import registry as reconciliation_registry
from seckill import metrics as seckill_metrics


@functools.cache
def _multiprocess_registry():
    """Built once per process; the collectors read the files and Redis at each scrape."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    seckill_metrics.register(registry)
    ProcessCollector(pid=os.getppid, registry=registry)
    return registry


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return _multiprocess_registry()
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

"""django-prometheus's request, database and cache metrics on the shop's own /metrics.

In one process (tests, runserver) /metrics serves the default registry, where
django-prometheus registers; with PROMETHEUS_MULTIPROC_DIR every process writes them
to the shared directory like the shop's own metrics, and config/metrics.py adds them
up (config/tests/test_web_server.py checks that with two gunicorn workers).
"""

import re

import pytest

pytestmark = pytest.mark.django_db


def _value(body, name, **labels):
    """The sample of `name` whose labels include `labels` (in any order), or 0.0."""
    for match in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", body, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(2))
    return 0.0


def _scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_a_request_increments_django_prometheus_counters_visible_on_metrics(client, staff, product):
    client.force_login(staff)
    view = {"view": "shop:product-list", "method": "GET"}
    before = _scrape(client)

    assert client.get("/products/").status_code == 200

    after = _scrape(client)
    by_view = "django_http_responses_total_by_status_view_method_total"
    assert _value(after, by_view, status="200", **view) == _value(before, by_view, status="200", **view) + 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert _value(after, latency, **view) == _value(before, latency, **view) + 1
    queries = "django_db_execute_total"
    assert _value(after, queries, alias="default", vendor="mysql") > _value(before, queries, alias="default")
    cache_gets = "django_cache_get_total"
    assert _value(after, cache_gets, backend="redis") > _value(before, cache_gets, backend="redis")  # the session
    assert "# HELP seckill_lock_acquired_total" in after  # the shop's own metrics, on the same page


def test_the_metrics_view_stays_the_shops_own(client):
    """No second, unguarded exporter: django-prometheus's URLs are not mounted."""
    assert client.get("/metrics").status_code == 403  # anonymous: the shop's view refused it
    assert client.get("/metrics/").status_code == 404
    assert client.get("/prometheus/metrics").status_code == 404

"""The purchase path's one log line and its counters (seckill/telemetry.py), and the request id
(core/request_id.py) that ties a response to its line. Log lines are read as the JSON the
production formatter writes (config/logs.py)."""

import io
import json
import logging

import pytest

from config.logs import formatter
from core.request_id import request_id_from
from seckill import cache, telemetry
from seckill.tests.conftest import create_sale

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def json_lines():
    """Every record of the root logger, rendered by the production JSON formatter, as dicts."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def purchase_lines(lines):
    return [line for line in lines if line.get("logger") == "seckill.purchase"]


def test_a_purchase_through_the_api_logs_one_json_line_with_its_request_id(customer_api, customer, json_lines):
    activity = create_sale(stock=5)
    response = customer_api.post(
        f"/api/seckill/activities/{activity.pk}/purchase/", {"quantity": 1}, format="json", HTTP_X_REQUEST_ID="abc-123"
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "abc-123"
    (line,) = purchase_lines(json_lines())
    assert line["event"] == "purchase" and line["level"] == "info" and line["outcome"] == "ok"
    assert (line["request_id"], line["customer_id"], line["sale_id"]) == ("abc-123", customer.pk, activity.pk)
    assert line["ms"] > 0 and line["time"].endswith("Z")


def test_a_refusal_logs_its_code_and_a_made_up_request_id_is_replaced(customer_api, customer, json_lines):
    activity = create_sale(stock=1, limit=1)
    url = f"/api/seckill/activities/{activity.pk}/purchase/"
    assert customer_api.post(url, {"quantity": 1}, format="json").status_code == 201
    forged = 'x" injected\nline'
    refused = customer_api.post(url, {"quantity": 1}, format="json", HTTP_X_REQUEST_ID=forged)
    assert refused.status_code == 409
    first, second = purchase_lines(json_lines())
    assert first["outcome"] == "ok" and second["outcome"] == refused.json()["code"]
    assert second["request_id"] == refused["X-Request-ID"] != forged
    assert len(second["request_id"]) == 32 and first["request_id"] != second["request_id"]


def test_the_sold_out_shortcut_logs_and_counts_too(customer_api, json_lines):
    activity = create_sale(stock=1)
    cache.sale_info(activity.pk)
    cache.mark_sold_out(activity.pk)
    before = telemetry.purchase_totals(activity.pk)
    response = customer_api.post(f"/api/seckill/activities/{activity.pk}/purchase/", {"quantity": 1}, format="json")
    assert response.status_code == 409
    (line,) = purchase_lines(json_lines())
    assert line["outcome"] == "sold_out" and line["request_id"] == response["X-Request-ID"]
    after = telemetry.purchase_totals(activity.pk)
    assert after.outcomes.get("sold_out", 0) == before.outcomes.get("sold_out", 0) + 1
    assert after.count == before.count + 1


def test_an_unknown_sale_id_is_counted_under_other():
    before = telemetry.purchase_totals("other").outcomes.get("not_found", 0)
    telemetry.purchase_done(987654321, 1, "not_found", 0.0)
    assert telemetry.purchase_totals("other").outcomes["not_found"] == before + 1
    assert telemetry.purchase_totals(987654321).outcomes == {}


def test_request_ids_are_kept_only_when_sane():
    assert request_id_from("0f1e2d3c-aaaa-bbbb-cccc-000000000000") == "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    assert request_id_from("Root:1-5759e988.bd862e3f") == "Root:1-5759e988.bd862e3f"
    for bad in ("", None, "a" * 129, "has space", 'quote"', "new\nline", "é"):
        made = request_id_from(bad)
        assert made != bad and len(made) == 32


def test_quantiles_come_from_the_bucket_counts():
    bounds = (*telemetry.BUCKETS, float("inf"))
    # 98 purchases in (1 ms, 2 ms], 2 in (50 ms, 75 ms]
    per_bucket = [0] * len(bounds)
    per_bucket[bounds.index(0.002)] = 98
    per_bucket[bounds.index(0.075)] = 2
    cumulative = [sum(per_bucket[: i + 1]) for i in range(len(bounds))]
    assert telemetry.quantile(0.5, cumulative) == pytest.approx(0.001 + 0.001 * 50 / 98)
    assert 0.05 < telemetry.quantile(0.99, cumulative) <= 0.075
    assert telemetry.quantile(0.5, [0] * len(bounds)) is None
    assert telemetry.quantile(0.5, [0] * (len(bounds) - 1) + [3]) == telemetry.BUCKETS[-1]  # all over 5 s

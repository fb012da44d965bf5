"""The database budget of a purchase and of the order writer (docs/benchmarks.md).

Counts statements, not time, so it is deterministic on a noisy machine: the purchase
request reads the customer's token and nothing else and writes nothing; the writer
writes a batch of any size with the same five statements.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from seckill import cache, writer
from seckill.tests.conftest import create_customers, create_sale
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_purchase_request_reads_nothing_but_the_token_and_writes_nothing(settings, customer):
    settings.SECKILL_ACK = "reserved"  # the request's own work; the writer's is measured below
    activity = create_sale(stock=5, limit=2)
    client = token_client(customer)
    url = f"/api/seckill/activities/{activity.pk}/purchase/"
    client.post(url, format="json")  # warms the process caches
    cache.sale_info(activity.pk)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, format="json")
    assert response.status_code == 202
    statements = [q["sql"] for q in queries.captured_queries]
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in statements), statements
    assert all("authtoken_token" in sql for sql in statements), statements  # DRF's token lookup, one join


@pytest.mark.parametrize("batch", [1, 50])
def test_the_writer_writes_a_batch_of_any_size_with_five_statements(settings, batch):
    settings.SECKILL_ACK = "reserved"
    settings.SECKILL_RATE_LIMIT_PER_IP = 0
    activity = create_sale(stock=batch, limit=1)
    from seckill.purchase import purchase

    for user in create_customers(batch):
        purchase(activity_id=activity.pk, user=user, quantity=1)
    cache.sale_info(activity.pk)
    with CaptureQueriesContext(connection) as queries:
        assert writer.drain(activity.pk) == batch
    sale_rows = [
        q["sql"].split()[0].upper()
        for q in queries.captured_queries
        if any(t in q["sql"] for t in ("seckill_", "orders_order ", "orders_order (", "orders_orderitem"))
        and "orders_orderemail" not in q["sql"]
    ]
    writes = [s for s in sale_rows if s in {"INSERT", "UPDATE"}]
    assert writes == ["INSERT", "INSERT", "INSERT", "INSERT", "UPDATE"], sale_rows  # quotas, orders, items, links, pool

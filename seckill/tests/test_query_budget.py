"""The purchase path's database budget: the order write and nothing else (docs/benchmarks.md).

Counts statements, not time, so it is deterministic on a noisy machine.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from seckill import cache
from seckill.tests.conftest import create_sale
from shop.tests.factories import token_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_purchase_reads_nothing_but_the_token_and_writes_only_the_order(customer):
    activity = create_sale(stock=5, limit=2)
    client = token_client(customer)
    url = f"/api/seckill/activities/{activity.pk}/purchase/"
    client.post(url, format="json")  # warms the process caches
    cache.sale_info(activity.pk)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, format="json")
    assert response.status_code == 201
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert not any("seckill_seckillactivity" in sql for sql in reads), reads  # no sale read on the hot path
    assert not any("orders_orderitem" in sql for sql in reads), reads  # the answer is built from what was written
    writes = [s for s in statements if s in {"INSERT", "UPDATE"}]
    assert writes == ["INSERT", "INSERT", "INSERT", "INSERT", "UPDATE"], statements

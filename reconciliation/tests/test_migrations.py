"""A database migrated on the old layout (reconciliation and fencing tokens inside the
seckill app) migrates forward with its rows, ids and links intact.

The test walks the real migrations on the real MariaDB: back to the old layout, rows
written into the old tables, then forward to today's leaf migrations.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from locks.models import FencingToken
from reconciliation.models import Discrepancy, ReconciliationRun

pytestmark = pytest.mark.django_db(transaction=True)

OLD_LAYOUT = [("seckill", "0003_idempotency_key_per_sale"), ("locks", None), ("reconciliation", None)]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _tables():
    return set(connection.introspection.table_names())


def _sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_rows_of_the_old_layout_survive_the_move(staff):
    try:
        _migrate(OLD_LAYOUT)
        tables = _tables()
        assert {"seckill_fencingtoken", "seckill_reconciliationrun", "seckill_discrepancy"} <= tables
        assert not {"locks_fencingtoken", "reconciliation_reconciliationrun", "reconciliation_discrepancy"} & tables
        _sql("INSERT INTO seckill_fencingtoken (id, resource, highest_token) VALUES (7, 'seckill:3', 4294967301)")
        _sql(
            "INSERT INTO seckill_reconciliationrun (id, started_at, finished_at, status, triggered_by, slot, scope,"
            " fix, found, counts, repairs, notes, error) VALUES (11, NOW(6), NOW(6), 'found', 'command',"
            " 'nightly:2026-11-30', '{}', 0, 1, '{\"oversold\": 1}', '[]', '[]', '')"
        )
        _sql(
            "INSERT INTO seckill_discrepancy (id, run_id, last_run_id, seen_count, kind, activity_id, order_numbers,"
            " summary, detail, fingerprint, state, resolved_by_id, resolved_at, resolution, created_at) VALUES"
            " (21, 11, 11, 2, 'oversold', 3, '[\"FS-AAAA-BBBB-CCCC\"]', 'sale 3 oversold by 1', '{\"excess\": 1}',"
            " 'f1', 'resolved', %s, NOW(6), 'refunded', NOW(6))",
            [staff.pk],
        )
        _sql("UPDATE django_content_type SET app_label = 'seckill' WHERE model = 'discrepancy'")
    finally:
        _migrate()

    tables = _tables()
    assert {"locks_fencingtoken", "reconciliation_reconciliationrun", "reconciliation_discrepancy"} <= tables
    assert not {"seckill_fencingtoken", "seckill_reconciliationrun", "seckill_discrepancy"} & tables
    assert FencingToken.objects.get(pk=7).highest_token == 4294967301
    run = ReconciliationRun.objects.get(pk=11)
    assert (run.status, run.slot, run.counts) == ("found", "nightly:2026-11-30", {"oversold": 1})
    found = Discrepancy.objects.get(pk=21)
    assert (found.run_id, found.last_run_id, found.activity_id, found.seen_count) == (11, 11, 3, 2)
    assert (found.order_numbers, found.detail, found.resolved_by) == (["FS-AAAA-BBBB-CCCC"], {"excess": 1}, staff)
    ContentType.objects.clear_cache()
    assert ContentType.objects.get(model="discrepancy").app_label == "reconciliation"  # permissions follow the model
    # New rows get ids after the old ones: the tables kept their auto-increment counters.
    assert ReconciliationRun.objects.create(triggered_by="test").pk > 11

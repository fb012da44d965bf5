"""Reconciliation results as Prometheus gauges, read from the database at scrape time.

The numbers live in the database (written by whichever worker ran the reconciliation),
so a collector that reads them when scraped is right in every web process, with or
without PROMETHEUS_MULTIPROC_DIR, and needs no gauge kept in sync by hand. It sits in
a registry of its own; config/metrics.py appends it to the /metrics answer, so the
default registry (and every other user of it) never runs a DB query.
"""

import logging

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from reconciliation import selectors
from reconciliation.models import DiscrepancyKind

log = logging.getLogger(__name__)

_STATUSES = ("clean", "found", "failed")


class ReconciliationCollector:
    def describe(self):
        return [
            GaugeMetricFamily("seckill_reconciliation_open_discrepancies", "Open discrepancies.", labels=["kind"]),
            GaugeMetricFamily("seckill_reconciliation_last_run_timestamp_seconds", "When the last run finished."),
            GaugeMetricFamily("seckill_reconciliation_last_run_found", "Discrepancies the last run found."),
            GaugeMetricFamily(
                "seckill_reconciliation_last_run_status", "1 for the last run's status.", labels=["status"]
            ),
        ]

    def collect(self):
        try:
            counts = selectors.open_discrepancy_counts()
            run = selectors.last_finished_run()
        except Exception:  # a scrape must not fail because the DB is down; /healthz says that
            log.warning("reconciliation metrics unavailable", exc_info=True)
            return
        open_gauge = GaugeMetricFamily(
            "seckill_reconciliation_open_discrepancies", "Open discrepancies.", labels=["kind"]
        )
        for kind in DiscrepancyKind.values:
            open_gauge.add_metric([kind], counts.get(kind, 0))
        yield open_gauge
        if run is None or run.finished_at is None:
            return
        yield GaugeMetricFamily(
            "seckill_reconciliation_last_run_timestamp_seconds",
            "When the last run finished.",
            value=run.finished_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "seckill_reconciliation_last_run_found", "Discrepancies the last run found.", value=run.found
        )
        status = GaugeMetricFamily(
            "seckill_reconciliation_last_run_status", "1 for the last run's status.", labels=["status"]
        )
        for name in _STATUSES:
            status.add_metric([name], 1 if run.status == name else 0)
        yield status


registry = CollectorRegistry()
registry.register(ReconciliationCollector())

"""Flash-sale metrics for Prometheus: what the order writers do, and how far behind they are.

Counters and the batch histogram are counted where the work happens (seckill/writer.py).
The lag of each live sale (intents waiting, age of the oldest) is read from Redis when
/metrics is scraped, by a collector, so it is the same whichever process answers.
"""

from django.db import DatabaseError
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from core.redis_errors import REDIS_ERRORS
from seckill.intents import live_lag

_written = Counter("seckill_writer_orders_written", "Orders the order writers committed.")
_refused = Counter("seckill_writer_intents_refused", "Intents the database refused (the customer sees why).")
_batch = Histogram(
    "seckill_writer_batch_size", "Intents per writer transaction.", buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500)
)
_batch_seconds = Histogram(
    "seckill_writer_batch_seconds",
    "Time to write and settle one batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def writer_batch(size, written, refused, seconds):
    _batch.observe(size)
    _batch_seconds.observe(seconds)
    _written.inc(written)
    _refused.inc(refused)


class WriterLagCollector:
    """seckill_writer_waiting_intents and seckill_writer_oldest_intent_age_seconds per live sale."""

    def describe(self):
        """The names, without reading Redis: prometheus_client calls this when the collector is registered."""
        yield GaugeMetricFamily("seckill_writer_waiting_intents", "", labels=["sale"])
        yield GaugeMetricFamily("seckill_writer_oldest_intent_age_seconds", "", labels=["sale"])

    def collect(self):
        waiting = GaugeMetricFamily(
            "seckill_writer_waiting_intents", "Accepted purchases not yet written.", labels=["sale"]
        )
        age = GaugeMetricFamily(
            "seckill_writer_oldest_intent_age_seconds", "Age of the oldest purchase not yet written.", labels=["sale"]
        )
        try:
            lags = live_lag()
        except (DatabaseError, *REDIS_ERRORS):  # a scrape during an outage still answers, without these two
            lags = {}
        for activity_id, lag in lags.items():
            waiting.add_metric([str(activity_id)], lag.waiting)
            age.add_metric([str(activity_id)], lag.oldest_age_s)
        yield waiting
        yield age


_registered = set()


def register(registry=REGISTRY):
    """Add the lag collector to `registry` once per process (AppConfig.ready may run twice in tests)."""
    if id(registry) not in _registered:
        registry.register(WriterLagCollector())
        _registered.add(id(registry))

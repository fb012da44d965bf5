"""Lock metrics in prometheus_client's default registry, served by config/metrics.py.

Every series is labelled by backend and by the lock's kind (`metric_label`, by default
the part of the name before the first ':'), never by the full name, so per-customer
locks do not grow the number of series.

Under gunicorn each worker process counts on its own unless PROMETHEUS_MULTIPROC_DIR
is set before the workers start (prometheus_client then writes the values to files in
that directory and the /metrics view adds them up); see docs/locks.md.
"""

from prometheus_client import REGISTRY, Counter, Histogram

_LABELS = ("backend", "lock")
# Waits and holds on this shop's locks are milliseconds; the long tail is a stuck job.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LockMetrics:
    """The counters and histograms every backend reports to, behind one object."""

    def __init__(self, registry=REGISTRY, prefix="seckill_lock"):
        def counter(name, doc):
            return Counter(f"{prefix}_{name}", doc, _LABELS, registry=registry)

        def histogram(name, doc):
            return Histogram(f"{prefix}_{name}", doc, _LABELS, buckets=_BUCKETS, registry=registry)

        self.acquired = counter("acquired", "Acquisitions that got the lock.")
        self.contended = counter("contended", "Acquisitions that found the lock held (counted once per acquire call).")
        self.timed_out = counter("timed_out", "Blocking acquisitions that gave up waiting.")
        self.renewed = counter("renewed", "Lease renewals by the watchdog.")
        self.lost = counter("lost", "Locks found to be no longer ours while still held.")
        self.stale_token_rejected = counter("stale_token_rejected", "DB writes refused for a stale fencing token.")
        self.wait_seconds = histogram("wait_seconds", "Time from the acquire call to getting the lock.")
        self.hold_seconds = histogram("hold_seconds", "Time from getting the lock to releasing it.")
        self._registry = registry
        self._prefix = prefix

    def value(self, name, *, backend, lock):
        """One sample, e.g. value("acquired_total", backend="redis", lock="job"); 0.0 before the first."""
        sample = self._registry.get_sample_value(f"{self._prefix}_{name}", {"backend": backend, "lock": lock})
        return sample or 0.0

    def snapshot(self):
        """Every lock sample as {series name: [{labels, value}]}, for a JSON view or a test."""
        result = {}
        for family in self._registry.collect():
            if not family.name.startswith(self._prefix):
                continue
            for sample in family.samples:
                result.setdefault(sample.name, []).append({"labels": dict(sample.labels), "value": sample.value})
        return result


lock_metrics = LockMetrics()

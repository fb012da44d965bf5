"""What each purchase leaves behind: one log line, its latency, its outcome code.

`purchase_done` is called once per purchase request, when its answer is known: by
`purchase()` (seckill/purchase.py) for every answer it gives, and by the API's sold-out
shortcut (seckill/api.py), which answers before `purchase()`. It costs no network call:

- one log line at INFO, `event: purchase`, with sale_id, customer_id, outcome (ok,
  confirming, replayed, or the refusal's code: sold_out, limit_reached, not_started,
  ended, rate_limited, unavailable, ...), ms, and the request_id bound to structlog's
  context by core/request_id.py; JSON in production (config/logs.py). It is a plain
  `logging` call with the event as a dict, which the shop's formatters render like a
  structlog logger's: structlog's BoundLogger in front of it cost another ~12 µs a line.
- `seckill_purchase_seconds{sale}`, a prometheus_client histogram of the time the purchase
  took (from `purchase()`'s entry, or the API view's for the shortcut), and
  `seckill_purchase_outcomes_total{sale,code}`, a counter. Under PROMETHEUS_MULTIPROC_DIR
  each process writes them to its own memory-mapped file (no lock between processes, no
  system call), and `purchase_totals` adds up every process's files, as /metrics does.

Refusals decided inside purchase.lua (sold out, limit, rate limited, not started, ended)
come back to `purchase()` as its outcome, so they are counted here without touching Redis.
The sale label is only ever the id of a sale this process has loaded (seckill/cache.py);
any other id counts under "other", so requests for made-up ids cannot grow the metrics.

Cost per call, log line included: docs/operations.md, "Logs" (46 µs of CPU on a
busy shared 2-core machine).
"""

import logging
import os
import time
from dataclasses import dataclass
from glob import glob

from prometheus_client import Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from seckill import cache

log = logging.getLogger("seckill.purchase")

# Seconds. Fine below 10 ms (a refusal or a `reserved` acknowledgement takes about 1 ms),
# coarser up to the committed acknowledgement's wait (SECKILL_ACK_WAIT_SECONDS, 2 s).
BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
    0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0,
)  # fmt: skip
SECONDS = "seckill_purchase_seconds"
OUTCOMES = "seckill_purchase_outcomes"
ACCEPTED = ("ok", "confirming", "replayed")

_seconds = Histogram(SECONDS, "Time a flash-sale purchase took, by sale.", ["sale"], buckets=BUCKETS)
_outcomes = Counter(OUTCOMES, "Answers to flash-sale purchases, by sale and outcome code.", ["sale", "code"])


def purchase_done(sale_id, customer_id, code, started):
    """Count, time and log one purchase's answer. `started`: time.perf_counter() at its start."""
    elapsed = time.perf_counter() - started
    sale = str(sale_id) if cache.is_known(sale_id) else "other"
    _seconds.labels(sale).observe(elapsed)
    _outcomes.labels(sale, code).inc()
    if log.isEnabledFor(logging.INFO):
        log.info(
            {
                "event": "purchase",
                "sale_id": sale_id,
                "customer_id": customer_id,
                "outcome": code,
                "ms": round(elapsed * 1000, 3),
            }
        )


def outcome_of(result):
    """The outcome code of a PurchaseOutcome (seckill/outcome.py)."""
    if result.replayed:
        return "replayed"
    return "ok" if result.order is not None else "confirming"


@dataclass(frozen=True)
class Totals:
    """Since the metrics began (the start of `make run`): `buckets` counts the purchases
    at or under each of BUCKETS and +Inf (cumulative); `outcomes` is {code: count}."""

    buckets: tuple
    outcomes: dict

    @property
    def count(self):
        return self.buckets[-1] if self.buckets else 0


def purchase_totals(activity_id):
    """The sale's histogram and outcome counts, added up over every process."""
    sale = str(activity_id)
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        files = glob(os.path.join(folder, "counter_*.db")) + glob(os.path.join(folder, "histogram_*.db"))
        families = MultiProcessCollector.merge(files, accumulate=True)
    else:
        families = [*_seconds.collect(), *_outcomes.collect()]
    buckets = {}
    outcomes = {}
    for family in families:
        if family.name not in (SECONDS, OUTCOMES):
            continue
        for sample in family.samples:
            if sample.labels.get("sale") != sale:
                continue
            if sample.name == f"{SECONDS}_bucket":
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == f"{OUTCOMES}_total":
                code = sample.labels["code"]
                outcomes[code] = outcomes.get(code, 0) + int(sample.value)
    bounds = (*BUCKETS, float("inf"))
    return Totals(tuple(int(buckets.get(b, 0)) for b in bounds) if buckets else (0,) * len(bounds), outcomes)


def quantile(q, cumulative):
    """The q-quantile in seconds of a window's cumulative bucket counts (aligned with BUCKETS
    and +Inf), interpolated linearly inside its bucket as Prometheus's histogram_quantile
    does; None when the window holds no purchase. One in the +Inf bucket reads as the last bound."""
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip((*BUCKETS, float("inf")), cumulative, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return BUCKETS[-1]
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return BUCKETS[-1]

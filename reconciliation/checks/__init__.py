"""Every reconciliation check, by domain, and the list the runner runs.

- catalogue.py: negative free stock;
- orders.py: duplicate checkouts (one Idempotency-Key, or the same cart twice in a minute);
- seckill.py: oversold and over-limit sales, duplicate sale orders, stranded reservations;
- drift.py: the units of a sale adding up in the database and in Redis, and the stock
  transfers of bucketed sales left between their two steps;
- scope.py: what a run looks at, and the reads several checks share.

Each check takes a Scope and returns Findings (reconciliation/findings.py).
"""

from reconciliation.checks import catalogue
from reconciliation.checks import orders as orders_checks
from reconciliation.checks.drift import conservation, stock_drift
from reconciliation.checks.scope import Scope
from reconciliation.checks.seckill import duplicate_orders, over_limit, oversold, stranded_reservations


def negative_stock(scope):
    product_ids = None
    if scope.activity_ids is not None:
        product_ids = sorted({s.product_id for s in scope.sales().values()})
    return catalogue.negative_stock(product_ids=product_ids)


def checkout_duplicates(scope):
    """Checkout orders have no sale, so a run limited to sales leaves them out."""
    if scope.activity_ids is not None:
        return []
    return orders_checks.duplicate_checkout_keys(scope.duplicate_idempotency_keys()) + orders_checks.repeated_checkouts(
        since=scope.since
    )


# The runner's list: (label, check). Oversold and over_limit share one pass over the
# orders (Scope.live_units), which stock_drift then reuses.
CHECKS = (
    ("negative_stock", negative_stock),
    ("duplicate_order (checkout)", checkout_duplicates),
    ("duplicate_order (sale)", duplicate_orders),
    ("oversold", oversold),
    ("over_limit", over_limit),
    ("stock_drift", stock_drift),
    ("stranded_reservation", stranded_reservations),
)


__all__ = ["CHECKS", "Scope", "conservation"]

"""The shape every reconciliation check returns, and the kinds of problem it can name.

A check returns `Finding`s; the runner (reconciliation/runner.py) records each one as
a Discrepancy that staff see in the admin, once per problem however many runs see it.
"""

import hashlib
import json
from dataclasses import dataclass, field

from reconciliation.models import DiscrepancyKind

# Plain strings, so findings print and serialise as the kind names staff and scripts see.
DUPLICATE_ORDER = DiscrepancyKind.DUPLICATE_ORDER.value
OVERSOLD = DiscrepancyKind.OVERSOLD.value
OVER_LIMIT = DiscrepancyKind.OVER_LIMIT.value
STOCK_DRIFT = DiscrepancyKind.STOCK_DRIFT.value
STRANDED_RESERVATION = DiscrepancyKind.STRANDED_RESERVATION.value
NEGATIVE_STOCK = DiscrepancyKind.NEGATIVE_STOCK.value
MAX_ORDER_NUMBERS = 100  # order numbers kept on one finding; its detail has the totals


@dataclass(frozen=True)
class Finding:
    """One discrepancy as a check sees it, before it is recorded.

    `key` names the problem independently of the run that found it (the objects and
    amounts involved), so a problem seen again the next night is recognised as the
    same one rather than flagged twice.
    """

    kind: str
    key: tuple
    summary: str
    activity_id: int | None = None
    order_numbers: tuple = ()
    detail: dict = field(default_factory=dict)

    @property
    def fingerprint(self):
        raw = json.dumps([self.kind, *self.key], default=str, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:40]

"""Orders that are on their way: accepted, but not yet written by the app that sells them.

A flash-sale purchase is acknowledged before its order row exists (the order writer,
seckill/writer.py, commits it a moment later), or is refused by the database when the
writer comes to it. The order page and `GET /api/orders/<number>/` ask here when no
Order has the number, so the customer sees "confirming" or the reason instead of a 404.

Apps that sell this way register a finder in their AppConfig.ready(); the orders app
imports none of them, so its imports keep pointing one way.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Model

CONFIRMING, REFUSED = "confirming", "refused"

_finders = []


@dataclass(frozen=True)
class PendingOrder:
    number: str
    product: Model  # a shop.Product; pk, slug and name are read
    quantity: int
    unit_price: Decimal
    status: str = CONFIRMING
    expires_at: datetime | None = None
    code: str = ""  # why it was refused
    detail: str = ""

    @property
    def total(self):
        return self.unit_price * self.quantity

    @property
    def is_confirming(self):
        return self.status == CONFIRMING


def register(finder):
    """`finder(*, user, number)` returns a PendingOrder of that customer, or None."""
    if finder not in _finders:
        _finders.append(finder)


def pending_order_get(*, user, number):
    """The customer's order `number` that is not written yet (or was refused), else None."""
    for finder in _finders:
        found = finder(user=user, number=number)
        if found is not None:
            return found
    return None

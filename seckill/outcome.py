"""What a flash-sale purchase hands back to the API and the page."""

from dataclasses import dataclass, field

from orders.models import Order
from orders.pending import PendingOrder
from shop.models import Product


def pending_of(sale, *, number, quantity, expires_at=None):
    """The PendingOrder (orders/pending.py) of an intent of this sale: "confirming"."""
    product = Product(pk=sale.product_id, slug=sale.product_slug, name=sale.product_name)
    return PendingOrder(number=number, product=product, quantity=quantity, unit_price=sale.price, expires_at=expires_at)


@dataclass(frozen=True)
class PurchaseOutcome:
    """An order (201), or the order number of one being written (202, `pending`).

    `replayed` when it is the first answer to the same Idempotency-Key, not a new purchase.
    """

    order: Order | None = None
    items: list | None = field(default=None, compare=False)  # the order's items when just written
    pending: PendingOrder | None = None
    replayed: bool = False

    @property
    def status(self):
        return 201 if self.order is not None else 202

    @property
    def number(self):
        return self.order.number if self.order is not None else self.pending.number

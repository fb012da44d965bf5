"""What a flash-sale purchase hands back to the API and the page."""

from dataclasses import dataclass, field

from orders.models import Order


@dataclass(frozen=True)
class PurchaseOutcome:
    """An order (sync mode, 201) or a ticket (async mode, 202); `replayed` when it is
    the first answer to the same Idempotency-Key, not a new purchase."""

    order: Order | None = None
    items: list | None = field(default=None, compare=False)  # the order's items when just written
    ticket_id: str | None = None
    replayed: bool = False

    @property
    def status(self):
        return 201 if self.order is not None else 202

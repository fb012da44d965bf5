"""Reconciliation checks on the catalogue, and the finding shape every app's checks return.

`Finding` lives here, in the app every other one depends on, so that the orders and
seckill checks can return it without an import pointing the wrong way
(seckill -> orders -> shop). The runner that records findings is
seckill/reconciliation/runner.py.
"""

import hashlib
import json
from dataclasses import dataclass, field

from django.db import connection

NEGATIVE_STOCK = "negative_stock"


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


def negative_stock(*, product_ids=None):
    """Products whose free stock is below zero (I1).

    The CHECK (stock >= 0) makes this impossible through any normal write; the check is
    the backstop for a constraint that was disabled (a bulk import with
    check_constraint_checks=0) or lost in a migration. One indexed scan of the products.
    """
    sql = "SELECT id, slug, stock FROM shop_product WHERE stock < 0"
    params = []
    if product_ids is not None:
        if not product_ids:
            return []
        sql += f" AND id IN ({', '.join(['%s'] * len(product_ids))})"
        params = list(product_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY id", params)
        rows = cursor.fetchall()
    return [
        Finding(
            kind=NEGATIVE_STOCK,
            key=(product_id, stock),
            summary=f"product {slug} has stock {stock}",
            detail={"product_id": product_id, "product": slug, "stock": stock},
        )
        for product_id, slug, stock in rows
    ]

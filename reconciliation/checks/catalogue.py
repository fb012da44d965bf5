"""Reconciliation check of the catalogue: no product below zero free stock (I1)."""

from django.db import connection

from reconciliation.findings import NEGATIVE_STOCK, Finding


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

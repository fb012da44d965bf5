"""Order rows written in bulk, for callers that write many one-item orders at once.

The flash sale writes its orders here (seckill/services/order_write.py), inside its own
transaction, next to its own rows. The statements are the ones the ORM would send
(orders/tests/test_rows.py reads the rows back through the ORM), written as plain SQL
because building and saving model instances took half the CPU of a purchase, and
batched so that one statement inserts every order of a batch and one every item.

Safe to call inside any transaction: nothing here commits, and a failure (a unique
idempotency key already used, say) raises before the caller's transaction commits, so
the caller's rollback takes the orders with it. Returned orders are built with
`Model.from_db`, as a query would load them, so callers can use them like any loaded
Order without reading them back.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from orders.models import Order, OrderItem
from shop.models import Product

_ORDER_COLUMNS = (
    "number, user_id, status, source, total, version, idempotency_key, expires_at, paid_at, closed_at, "
    "payment_reference, created_at, updated_at"
)


@dataclass(frozen=True)
class OrderLine:
    """One order of one product, unpaid, as a flash sale sells it."""

    number: str
    user_id: int
    product: Product  # only pk, slug and name are read
    quantity: int
    unit_price: Decimal
    expires_at: datetime
    idempotency_key: str | None = None

    @property
    def total(self):
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class WrittenOrder:
    order: Order
    items: list


def insert_order_rows(lines, *, now, source=Order.Source.SECKILL):
    """Insert each line's order and its one item; returns WrittenOrders in the lines' order."""
    return [
        _as_loaded(line, order_id, item_id, source, now)
        for line, (order_id, item_id) in zip(lines, insert_order_ids(lines, now=now, source=source), strict=True)
    ]


def insert_order_ids(lines, *, now, source=Order.Source.SECKILL):
    """Insert each line's order and its one item; returns (order id, item id) in the lines' order.

    For a caller that needs only the new ids (the flash-sale writer answers with them):
    building loaded model instances cost it more than the SQL did.
    """
    if not lines:
        return []
    ops = connection.ops
    with connection.cursor() as cursor:
        # The same in every row: escaped once by the driver, then written as text.
        source_sql, stamp_sql = (_escaped(cursor, value) for value in (source, ops.adapt_datetimefield_value(now)))
        order_rows, order_params = [], []
        for line in lines:
            order_rows.append(
                f"(%s, {sql_int(line.user_id)}, 'pending_payment', {source_sql}, {sql_decimal(line.total)}, 1, %s, "
                f"%s, NULL, NULL, '', {stamp_sql}, {stamp_sql})"
            )
            order_params += [line.number, line.idempotency_key, ops.adapt_datetimefield_value(line.expires_at)]
        order_ids = _insert(
            cursor,
            f"INSERT INTO orders_order ({_ORDER_COLUMNS}) VALUES ",  # noqa: S608 - see sql_int
            order_rows,
            order_params,
            key_sql="SELECT id, number FROM orders_order WHERE number IN ({marks})",
            keys=[line.number for line in lines],
        )
        product_sql = {line.product.pk: sql_int(line.product.pk) for line in lines}
        item_rows = [
            f"({sql_int(order_id)}, {product_sql[line.product.pk]}, {sql_int(line.quantity)}, "
            f"{sql_decimal(line.unit_price)})"
            for order_id, line in zip(order_ids, lines, strict=True)
        ]
        item_ids = _insert(
            cursor,
            "INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price) VALUES ",
            item_rows,
            [],
            key_sql="SELECT id, order_id FROM orders_orderitem WHERE order_id IN ({marks})",
            keys=order_ids,
        )
    return list(zip(order_ids, item_ids, strict=True))


def sql_int(value):
    """An integer as SQL text. Numbers are written into multi-row statements as text, not
    parameters: the driver escapes each parameter in Python, which cost the order writer
    more than MariaDB took to insert the rows. Safe because int() admits nothing but an
    integer and its decimal digits are all that reaches the statement; strings always
    go as parameters, through the driver's escaping."""
    return str(int(value))


def sql_decimal(value):
    """A finite Decimal as SQL text (see sql_int): digits, a sign and a point, nothing else."""
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return format(value, "f")


def _escaped(cursor, value):
    """`value` as the driver would send it (quoted and escaped), ready to be written as text."""
    return cursor.connection.literal(value).decode().replace("%", "%%")


def _insert(cursor, head, rows, params, *, key_sql, keys):
    """One multi-row INSERT of `rows` (their text, %s for each of `params`); the new ids in row order.

    MariaDB hands them back with RETURNING. Elsewhere (MySQL) the ids of one statement
    need not be consecutive under interleaved auto-increment locking, so they are read
    back by each row's unique key instead.
    """
    sql = head + ", ".join(rows)
    if len(rows) == 1:
        cursor.execute(sql, params)
        return [cursor.lastrowid]
    if connection.features.can_return_rows_from_bulk_insert:
        cursor.execute(sql + " RETURNING id", params)
        return [row_id for (row_id,) in cursor.fetchall()]
    cursor.execute(sql, params)
    cursor.execute(key_sql.format(marks=", ".join(["%s"] * len(keys))), list(keys))
    found = {key: row_id for row_id, key in cursor.fetchall()}
    return [found[key] for key in keys]


_ORDER_FIELDS = [f.attname for f in Order._meta.concrete_fields]
_ITEM_FIELDS = [f.attname for f in OrderItem._meta.concrete_fields]


def order_as_written(
    *,
    order_id,
    item_id,
    number,
    user_id,
    product,
    quantity,
    unit_price,
    created_at,
    expires_at,
    idempotency_key=None,
    source=Order.Source.SECKILL,
):
    """An unpaid one-item order another process has just written, as a query would load it.

    For an answer built from what the writer reported (ids and timestamps), so the
    caller need not read the rows back. Timestamps may be ISO strings.
    """
    line = OrderLine(
        number=number,
        user_id=user_id,
        product=product,
        quantity=quantity,
        unit_price=unit_price,
        expires_at=_when(expires_at),
        idempotency_key=idempotency_key,
    )
    return _as_loaded(line, order_id, item_id, source, _when(created_at))


def _when(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _as_loaded(line, order_id, item_id, source, now):
    order_values = {
        "id": order_id,
        "number": line.number,
        "user_id": line.user_id,
        "status": Order.Status.PENDING_PAYMENT,
        "source": source,
        "total": line.total,
        "version": 1,
        "idempotency_key": line.idempotency_key,
        "expires_at": line.expires_at,
        "paid_at": None,
        "closed_at": None,
        "payment_reference": "",
        "created_at": now,
        "updated_at": now,
    }
    order = Order.from_db("default", _ORDER_FIELDS, [order_values[name] for name in _ORDER_FIELDS])
    item_values = {
        "id": item_id,
        "order_id": order_id,
        "product_id": line.product.pk,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
    }
    item = OrderItem.from_db("default", _ITEM_FIELDS, [item_values[name] for name in _ITEM_FIELDS])
    item.order = order
    item.product = line.product
    return WrittenOrder(order=order, items=[item])

"""The order writer's transaction: a batch of intents becomes orders, every invariant checked by the DB.

One transaction per batch, in the order Saleor's stock code uses (rows locked in key
order, the hot row last):
- I3, the customers' quota rows: one upsert for the batch, sorted by customer, whose
  CHECK (units_held <= unit_limit) refuses the statement if any customer would exceed
  the limit;
- I4, the orders and their items (orders/rows.py) and the links from order to
  reservation, whose unique reservation id refuses a second order for one intent;
- I1, one conditional decrement of the sale's DB pool by the batch's units, last, so
  the one row every batch of the sale updates stays locked only until the commit. A
  bucketed sale's batch (one bucket's stream) decrements that bucket's row instead, so
  writers of different buckets update different rows; only when the row holds too few
  does the batch lock every pool row of the sale (bucket rows in key order, then the
  sale row, the reserve) and take the difference from the reserve and then the other
  buckets: the rows stay a partition of the units not yet ordered, each >= 0.

A batch the database refuses is split in halves until the refused intents stand alone
(a few more transactions, only when something is wrong); each refused intent is
recorded as a SeckillRefusal, so its customer can see why. An intent already written
(a writer died after COMMIT, before XACK) is found first and reported as written again.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.db import atomic_with_retry
from orders.models import Order
from orders.notifications import order_confirmation_on_commit
from orders.rows import OrderLine, insert_order_ids, sql_int
from seckill.models import SeckillOrder, SeckillRefusal
from shop.models import Product

_QUOTA_INSERT = "INSERT INTO seckill_seckillquota (activity_id, user_id, units_held, unit_limit) VALUES "
_QUOTA_ON_DUPLICATE = " ON DUPLICATE KEY UPDATE units_held = units_held + VALUES(units_held)"
_LINK_INSERT = (
    "INSERT INTO seckill_seckillorder (order_id, activity_id, user_id, quantity, reservation_id, created_at) VALUES "
)
_POOL_TAKE = (
    "UPDATE seckill_seckillactivity SET stock_available = stock_available - %s WHERE id = %s AND stock_available >= %s"
)


_BUCKET_TAKE = (
    "UPDATE seckill_seckillstockbucket SET stock_available = stock_available - %s"
    " WHERE activity_id = %s AND `index` = %s AND stock_available >= %s"
)
_BUCKET_ROWS = (
    "SELECT id, `index`, stock_available FROM seckill_seckillstockbucket WHERE activity_id = %s ORDER BY id FOR UPDATE"
)
_RESERVE_ROW = "SELECT stock_available FROM seckill_seckillactivity WHERE id = %s FOR UPDATE"
_ROW_TAKE = (
    "UPDATE seckill_seckillstockbucket SET stock_available = stock_available - %s"
    " WHERE id = %s AND stock_available >= %s"
)


class BucketShort(Exception):
    """A bucketed sale's batch needs more units than its bucket's row holds (order_write only)."""


class PoolEmpty(Exception):
    """The DB pool had fewer units than the batch: Redis was ahead and must not grow back."""


class Written(NamedTuple):
    """What the writer tells a waiting request about its order (seckill/purchase.py builds the answer)."""

    order_id: int
    item_id: int
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, order, item_id):
        return cls(order.pk, item_id, order.created_at, order.expires_at)


@dataclass
class BatchOutcome:
    written: list = field(default_factory=list)  # [(intent, Written)]
    refused: list = field(default_factory=list)  # [(intent, code, detail, back_on_sale)]


def intents_write(*, sale, intents, bucket=None):
    """Write the orders of `intents` (one sale; one bucket's stream when `bucket` is set); a
    BatchOutcome. Never raises a refusal: only a database outage (OperationalError)
    escapes, and then nothing of it committed."""
    outcome = BatchOutcome()
    todo = _skip_settled(sale, intents, outcome)
    _write_or_split(sale, todo, outcome, bucket)
    return outcome


def _skip_settled(sale, intents, outcome):
    """Intents already written or refused by an earlier delivery are reported again, not rewritten.

    Orders are looked for only for intents claimed from another writer: one read fresh
    from the stream can have an order only if Redis lost the record of its first
    delivery (a restart that lost its last second, a failover), and then the unique
    reservation id refuses the batch, the split isolates the intent and `_refuse` finds
    its order. Refusals are looked for in every batch, because a refused intent has no
    row whose uniqueness would stop it being written later.
    """
    rids = [i.reservation_id for i in intents]
    claimed = [i.reservation_id for i in intents if i.delivered_before]
    links = {}
    if claimed:
        links = dict(SeckillOrder.objects.filter(reservation_id__in=claimed).values_list("reservation_id", "order_id"))
    orders = Order.objects.prefetch_related("items").in_bulk(list(links.values())) if links else {}
    refusals = {
        rid: (code, detail)
        for rid, code, detail in SeckillRefusal.objects.filter(reservation_id__in=rids).values_list(
            "reservation_id", "code", "detail"
        )
    }
    todo = []
    for intent in intents:
        if intent.reservation_id in links:
            order = orders[links[intent.reservation_id]]
            outcome.written.append((intent, Written.of(order, order.items.all()[0].pk)))
        elif intent.reservation_id in refusals:
            code, detail = refusals[intent.reservation_id]
            outcome.refused.append((intent, code, detail, code != "sold_out"))
        else:
            todo.append(intent)
    return todo


def _write_or_split(sale, intents, outcome, bucket=None):
    if not intents:
        return
    try:
        try:
            written = _batch_tx(sale=sale, intents=intents, bucket=bucket)
        except BucketShort:  # rolled back; again, taking every pool row of the sale in key order
            written = _batch_tx(sale=sale, intents=intents, bucket=bucket, lock_all=True)
        outcome.written.extend(written)
        return
    except (IntegrityError, PoolEmpty) as exc:
        if len(intents) > 1:
            middle = len(intents) // 2
            _write_or_split(sale, intents[:middle], outcome, bucket)
            _write_or_split(sale, intents[middle:], outcome, bucket)
            return
        _refuse(sale, intents[0], exc, outcome)


@atomic_with_retry()
def _batch_tx(*, sale, intents, bucket=None, lock_all=False):
    now = timezone.now()
    product = Product(pk=sale.product_id, slug=sale.product_slug, name=sale.product_name)
    lines = [
        OrderLine(
            number=i.number,
            user_id=i.user_id,
            product=product,
            quantity=i.quantity,
            unit_price=i.unit_price,
            expires_at=datetime.fromtimestamp(i.deadline_ms / 1000, tz=UTC),
            idempotency_key=i.idempotency_key,
        )
        for i in intents
    ]
    units = {}
    for i in intents:
        units[i.user_id] = units.get(i.user_id, 0) + i.quantity
    stamp = connection.ops.adapt_datetimefield_value(now)
    sale_sql, limit_sql = sql_int(sale.id), sql_int(sale.per_user_limit)
    with connection.cursor() as cursor:
        # Numbers as text, strings as parameters (orders/rows.py `sql_int` says why).
        # Rows locked in key order (sorted customers): two writers cannot deadlock here.
        quota_rows = [f"({sale_sql}, {sql_int(u)}, {sql_int(units[u])}, {limit_sql})" for u in sorted(units)]
        cursor.execute(_QUOTA_INSERT + ", ".join(quota_rows) + _QUOTA_ON_DUPLICATE, [])
        written = insert_order_ids(lines, now=now)
        link_rows = [
            f"({sql_int(order_id)}, {sale_sql}, {sql_int(i.user_id)}, {sql_int(i.quantity)}, %s, %s)"
            for i, (order_id, _item_id) in zip(intents, written, strict=True)
        ]
        link_params = []
        for i in intents:
            link_params += [i.reservation_id, stamp]
        cursor.execute(_LINK_INSERT + ", ".join(link_rows), link_params)
        total = sum(units.values())
        if bucket is None:
            cursor.execute(_POOL_TAKE, [total, sale.id, total])  # I1, last: the hot row is locked till commit
            if cursor.rowcount != 1:
                raise PoolEmpty()
        else:
            _take_from_buckets(cursor, sale.id, bucket, total, lock_all=lock_all)
    order_confirmation_on_commit([order_id for order_id, _ in written])  # queued only if this commits
    return [
        (intent, Written(order_id, item_id, now, line.expires_at))
        for intent, line, (order_id, item_id) in zip(intents, lines, written, strict=True)
    ]


def _take_from_buckets(cursor, sale_id, bucket, units, *, lock_all):
    """I1 for a bucketed sale: `units` off the bucket's row, else off every pool row that has some.

    The common case is one conditional UPDATE of the bucket's own row, the last
    statement, as for a one-bucket sale. Short of units, it raises BucketShort: the
    transaction rolls back (the failed UPDATE may keep its row locked, and taking the
    other rows after it could deadlock with a writer of another bucket doing the same)
    and runs again with `lock_all`, which locks the sale's bucket rows in key order,
    holding none before, and then the sale row; no cycle can form with a writer
    holding its one row, which waits for nothing after it, nor with a cancellation,
    which locks only the sale row. It takes its own row's units, then the reserve's,
    then the other buckets'. Raises PoolEmpty when all of them together hold too few."""
    if not lock_all:
        cursor.execute(_BUCKET_TAKE, [units, sale_id, bucket, units])
        if cursor.rowcount != 1:
            raise BucketShort()
        return
    cursor.execute(_BUCKET_ROWS, [sale_id])
    rows = cursor.fetchall()
    cursor.execute(_RESERVE_ROW, [sale_id])
    reserve = cursor.fetchone()[0]
    own = [r for r in rows if r[1] == bucket]
    others = [r for r in rows if r[1] != bucket]
    plan, left = [], units
    for pk, _index, available in own:
        plan.append((pk, min(available, left)))
        left -= plan[-1][1]
    from_reserve = min(reserve, left)
    left -= from_reserve
    for pk, _index, available in others:
        if left <= 0:
            break
        plan.append((pk, min(available, left)))
        left -= plan[-1][1]
    if left > 0:
        raise PoolEmpty()
    for pk, take in plan:
        if take:
            cursor.execute(_ROW_TAKE, [take, pk, take])
    if from_reserve:
        cursor.execute(_POOL_TAKE, [from_reserve, sale_id, from_reserve])


def _refusal_of(exc):
    """(code, detail, back_on_sale) for what the database said about one intent."""
    if isinstance(exc, PoolEmpty):
        return "sold_out", "The last units went to other customers while your order was being written.", False
    message = str(exc.args[-1]) if exc.args else ""
    if "seckill_quota_within_limit" in message:
        return "limit_reached", "You already hold the limit per customer of this sale.", True
    if "order_unique_idempotency_key" in message:
        return "duplicate", "An order was already placed with this request's idempotency key.", True
    return "refused", "The shop could not write this order.", True


def _refuse(sale, intent, exc, outcome):
    # Another writer may have committed this very intent a moment ago (it claimed it from
    # us): then the refusal is a duplicate order number or reservation, and the order is
    # there. Checked before anything is given back, so a written unit never returns to sale.
    link = SeckillOrder.objects.select_related("order").filter(reservation_id=intent.reservation_id).first()
    if link is not None:
        outcome.written.append((intent, Written.of(link.order, link.order.items.get().pk)))
        return
    code, detail, back_on_sale = _refusal_of(exc)
    with transaction.atomic():
        SeckillRefusal.objects.get_or_create(
            reservation_id=intent.reservation_id,
            defaults={
                "activity_id": sale.id,
                "user_id": intent.user_id,
                "order_number": intent.number,
                "quantity": intent.quantity,
                "code": code,
                "detail": detail,
            },
        )
    outcome.refused.append((intent, code, detail, back_on_sale))

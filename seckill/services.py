"""Flash-sale writes other than the hot path itself: publish, warm, end, re-sync, the order
transaction, stock coming back from cancelled or expired orders, and async tickets."""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.db import atomic_with_retry
from core.errors import InvalidState
from locks import LockNotOwnedError, RedisLock, StaleTokenError, lock_metrics
from orders.models import Order, OrderItem, new_order_number
from orders.services import order_expire, take_stock
from seckill import cache, stock
from seckill.errors import LimitReached, SoldOut, Unavailable
from seckill.models import SeckillActivity, SeckillOrder, SeckillQuota, SeckillTicket
from shop.models import Product

log = logging.getLogger(__name__)


# --- Publishing and Redis state ---------------------------------------------------------


@atomic_with_retry()
def activity_publish(*, activity_id):
    """Set the sale's units aside from the product's free stock, once.

    The activity row is locked for the check-and-set, so two warm-ups racing publish
    once; the product's stock is taken with the same version-checked decrement as a
    checkout, so the sale can never set aside units the shop no longer has.
    Returns True if this call published it.
    """
    activity = SeckillActivity.objects.select_for_update().get(pk=activity_id)
    if activity.published_at is not None:
        return False
    take_stock(product_id=activity.product_id, quantity=activity.stock_total)
    SeckillActivity.objects.filter(pk=activity_id).update(
        stock_available=activity.stock_total, published_at=timezone.now()
    )
    return True


def _holders(activity_id):
    return list(
        SeckillQuota.objects.filter(activity_id=activity_id, units_held__gt=0).values_list("user_id", "units_held")
    )


def activity_warm(*, activity_id):
    """Publish if needed, then load the sale into Redis from the database (DESIGN.md §6).

    Idempotent and safe during a sale: the Lua script only writes the counters when
    they are missing, so a second warm-up never puts sold units back on sale. A
    warm-up after Redis lost its data counts from the database, which is the truth:
    units in orders written after it read are refused by the database's conditional
    decrement, never sold twice. Returns {"published": bool, "loaded": bool}.
    """
    warm_lock = RedisLock(f"seckill-warm:{activity_id}", ttl=30.0, fencing=False, metric_label="seckill_warm")
    if not warm_lock.acquire(blocking=True, timeout=5.0):
        raise Unavailable("Another process is preparing this sale; try again in a moment.")
    try:
        activity = SeckillActivity.objects.get(pk=activity_id)
        published = False
        if activity.published_at is None and activity.is_enabled and not activity.has_ended():
            published = activity_publish(activity_id=activity_id)
            activity.refresh_from_db()
        loaded = False
        if activity.published_at is not None:
            loaded = stock.warm(activity=activity, remaining=activity.stock_available, holders=_holders(activity_id))
        cache.forget_sale(activity_id)
        return {"published": published, "loaded": loaded}
    finally:
        try:
            warm_lock.release()
        except LockNotOwnedError:
            log.warning("warm-up of sale %s outlived its lock", activity_id)


def activities_due_for_warmup(now=None):
    now = now or timezone.now()
    lead = timedelta(minutes=settings.SECKILL_WARMUP_LEAD_MINUTES)
    return SeckillActivity.objects.filter(is_enabled=True, starts_at__lte=now + lead, ends_at__gt=now)


def warm_due_activities(now=None):
    """Beat job: warm sales starting soon, and re-warm live ones Redis has forgotten."""
    ids = list(activities_due_for_warmup(now).values_list("pk", flat=True))
    cold = [i for i, left in stock.remaining_many(ids).items() if left is None]
    return {i: activity_warm(activity_id=i) for i in cold}


def activity_end_now(*, activity_id):
    """Kill switch: no purchase is accepted from now on, in every process, at once.

    The end time moves to now (or, before the start, the sale is disabled) in the
    database, and the Redis metadata the Lua script checks is rewritten right away.
    """
    now = timezone.now()
    activity = SeckillActivity.objects.get(pk=activity_id)
    if activity.starts_at < now:
        SeckillActivity.objects.filter(pk=activity_id, ends_at__gt=now).update(ends_at=now, version=F("version") + 1)
    else:
        SeckillActivity.objects.filter(pk=activity_id).update(is_enabled=False, version=F("version") + 1)
    activity.refresh_from_db()
    if activity.published_at is not None:
        stock.warm(activity=activity, remaining=activity.stock_available, holders=_holders(activity_id))
    cache.forget_sale(activity_id)
    return activity


def open_reservations(activity_id):
    """Reservations in Redis that have not become an order (in flight, pending ticket or stranded)."""
    entries = list(stock.reservations(activity_id))
    ids = [e.reservation_id for e in entries]
    settled = set(SeckillOrder.objects.filter(reservation_id__in=ids).values_list("reservation_id", flat=True))
    return [e for e in entries if e.reservation_id not in settled], settled


def activity_resync(*, activity_id):
    """Rewrite the Redis counters from the database (staff action and `reconcile --fix`).

    remaining = units left in the DB pool minus reservations still on their way to an
    order; each customer's count = units in live orders plus open reservations. The
    database side is read in one statement and the open reservations are counted inside
    the Lua script (resync.lua), so a purchase running meanwhile is neither lost nor
    counted twice. Returns True when the counters were written.
    """
    activity = SeckillActivity.objects.get(pk=activity_id)
    if activity.published_at is None:
        return False
    if stock.remaining(activity_id) is None:
        return activity_warm(activity_id=activity_id)["loaded"]
    pool, settled, holders = _db_snapshot(activity_id)
    written = stock.resync(activity=activity, pool=pool, settled=settled, holders=holders)
    cache.forget_sale(activity_id)
    return written is not None


# One statement, so one InnoDB read view: the pool, the settled reservations and the
# customers' units are all as of the same instant. Kinds: 1 pool, 2 settled, 3 holder.
_SNAPSHOT = """
    SELECT 1, stock_available, NULL FROM seckill_seckillactivity WHERE id = %s
    UNION ALL SELECT 2, 0, CONVERT(reservation_id USING utf8mb4) FROM seckill_seckillorder WHERE activity_id = %s
    UNION ALL SELECT 3, units_held, CONVERT(user_id USING utf8mb4) FROM seckill_seckillquota
        WHERE activity_id = %s AND units_held > 0
"""


def _db_snapshot(activity_id):
    """(pool, settled reservation ids, [(customer, units)]) from one read view of the sale."""
    pool, settled, holders = 0, [], []
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT, [activity_id] * 3)
        for kind, number, text in cursor.fetchall():
            if kind == 1:
                pool = int(number)
            elif kind == 2:
                settled.append(text)
            else:
                holders.append((int(text), int(number)))
    return pool, settled, holders


def release_stranded_reservations(*, activity_id, older_than_s=None):
    """Give back reservations that never became an order (a worker died between the Lua
    reservation and the DB write). Without this, those units would never sell (I2).

    Only entries older than the grace period are touched: a purchase in flight is never
    older than a request timeout. Pending async tickets are not stranded: their order is
    still coming. Returns the reservation ids given back.
    """
    older_than_s = settings.SECKILL_RESERVATION_GRACE_SECONDS if older_than_s is None else older_than_s
    cutoff_ms = stock.server_time_ms() - int(older_than_s * 1000)
    pending, settled = open_reservations(activity_id)
    stock.forget_reservations(activity_id, list(settled))
    old = [e for e in pending if e.reserved_ms <= cutoff_ms]
    waiting = set(
        SeckillTicket.objects.filter(
            pk__in=[e.reservation_id for e in old], status=SeckillTicket.Status.PENDING
        ).values_list("pk", flat=True)
    )
    released = []
    for entry in old:
        if entry.reservation_id not in waiting and stock.give_back(
            activity_id=activity_id, reservation_id=entry.reservation_id
        ):
            released.append(entry.reservation_id)
    if released:
        log.warning("sale %s: gave back %d stranded reservation(s)", activity_id, len(released))
    return released


# --- The order transaction --------------------------------------------------------------


class DuplicateReservation(Exception):
    """The reservation already has its order (a redelivered task, a retried request)."""


# The customer's quota row, in one statement: per-customer limit and fencing together.
# - limit (I3): the CHECK (units_held <= unit_limit) fails the statement (error 4025);
# - fencing: a token lower than one already written sets units_held to NULL, which the
#   NOT NULL column refuses (error 1048). Assignments run left to right, so the IF sees
#   the row's old fence_token. Token 0 means "not written under the customer lock"
#   (async tickets, written later by a worker) and is never refused as stale.
_QUOTA_UPSERT = (
    "INSERT INTO seckill_seckillquota (activity_id, user_id, units_held, unit_limit, fence_token) "
    "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    "units_held = IF(VALUES(fence_token) > 0 AND fence_token > VALUES(fence_token), NULL, "
    "units_held + VALUES(units_held)), "
    "fence_token = GREATEST(fence_token, VALUES(fence_token))"
)


def _integrity_kind(exc):
    message = str(exc.args[-1]) if exc.args else ""
    if "seckill_quota_within_limit" in message:
        return "limit"
    if "units_held" in message and "cannot be null" in message:
        return "stale"
    if "reservation_id" in message or "order_unique_idempotency_key" in message or "PRIMARY" in message:
        return "duplicate"
    return "other"


def seckill_order_create(
    *, sale, user_id, quantity, reservation_id, fencing_token, idempotency_key=None, ticket_id=None
):
    """Write the order of a reservation: one transaction, every invariant checked by the DB.

    - fencing and I3, in the customer's quota row: the write is refused if a newer
      holder of the customer's lock has written since (the seed incident's stale
      holder), and its CHECK refuses more units than the limit;
    - I4: the order, its item and the unique reservation link, together;
    - I1: the conditional decrement of the sale's DB pool, last, so the sale's one hot
      row stays locked only from that statement to the commit.
    Raises LimitReached, SoldOut, StaleTokenError or DuplicateReservation; nothing is
    written then. `fencing_token` 0 writes without the fencing check (async tickets).
    """
    try:
        return _seckill_order_tx(
            sale=sale,
            user_id=user_id,
            quantity=quantity,
            reservation_id=reservation_id,
            fencing_token=fencing_token,
            idempotency_key=idempotency_key,
            ticket_id=ticket_id,
        )
    except IntegrityError as exc:
        kind = _integrity_kind(exc)
        if kind == "limit":
            raise LimitReached() from exc
        if kind == "stale":
            lock_metrics.stale_token_rejected.labels(backend="redis", lock="seckill_customer").inc()
            raise StaleTokenError(f"seckill:{sale.id}:customer:{user_id}", fencing_token, "a higher one") from exc
        if kind == "duplicate":
            raise DuplicateReservation() from exc
        raise


class _PoolEmpty(SoldOut):
    """The DB pool had fewer units than Redis believed: Redis was ahead and must not grow."""


# The order rows in plain SQL: the same statements the ORM would send, without building
# and saving three model instances per purchase (half the CPU of a purchase went there).
# seckill/tests/test_order_rows.py reads the rows back through the ORM and checks them.
_ORDER_INSERT = (
    "INSERT INTO orders_order (number, user_id, status, source, total, version, idempotency_key, expires_at, "
    "paid_at, closed_at, payment_reference, created_at, updated_at) "
    "VALUES (%s, %s, 'pending_payment', 'seckill', %s, 1, %s, %s, NULL, NULL, '', %s, %s)"
)
_ITEM_INSERT = "INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price) VALUES (%s, %s, %s, %s)"
_LINK_INSERT = (
    "INSERT INTO seckill_seckillorder (order_id, activity_id, user_id, quantity, reservation_id, fencing_token, "
    "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_TICKET_DONE = (
    "UPDATE seckill_seckillticket SET status = 'done', order_id = %s, updated_at = %s "
    "WHERE id = %s AND status = 'pending'"
)
_POOL_TAKE = (
    "UPDATE seckill_seckillactivity SET stock_available = stock_available - %s WHERE id = %s AND stock_available >= %s"
)


@atomic_with_retry()
def _seckill_order_tx(*, sale, user_id, quantity, reservation_id, fencing_token, idempotency_key, ticket_id):
    now = timezone.now()
    expires_at = now + timedelta(minutes=sale.payment_minutes)
    stamp, deadline = (
        connection.ops.adapt_datetimefield_value(now),
        connection.ops.adapt_datetimefield_value(expires_at),
    )
    number, total = new_order_number(), sale.price * quantity
    with connection.cursor() as cursor:
        cursor.execute(_QUOTA_UPSERT, [sale.id, user_id, quantity, sale.per_user_limit, fencing_token])
        cursor.execute(_ORDER_INSERT, [number, user_id, total, idempotency_key or None, deadline, stamp, stamp])
        order_id = cursor.lastrowid
        cursor.execute(_ITEM_INSERT, [order_id, sale.product_id, quantity, sale.price])
        item_id = cursor.lastrowid
        cursor.execute(_LINK_INSERT, [order_id, sale.id, user_id, quantity, reservation_id, fencing_token, stamp])
        if ticket_id:
            cursor.execute(_TICKET_DONE, [order_id, stamp, ticket_id])
            if cursor.rowcount != 1:
                raise DuplicateReservation()
        cursor.execute(_POOL_TAKE, [quantity, sale.id, quantity])  # I1, last: the hot row is locked till commit
        if cursor.rowcount != 1:
            raise _PoolEmpty()
    return _written_order(sale, order_id, item_id, number, user_id, quantity, total, idempotency_key, now, expires_at)


def _written_order(sale, order_id, item_id, number, user_id, quantity, total, idempotency_key, now, expires_at):
    """The Order just inserted, as the ORM would load it, with its item and product attached."""
    order = Order(
        id=order_id,
        number=number,
        user_id=user_id,
        status=Order.Status.PENDING_PAYMENT,
        source=Order.Source.SECKILL,
        total=total,
        version=1,
        idempotency_key=idempotency_key or None,
        expires_at=expires_at,
        payment_reference="",
        created_at=now,
        updated_at=now,
    )
    order._state.adding, order._state.db = False, "default"
    item = OrderItem(id=item_id, order=order, product_id=sale.product_id, quantity=quantity, unit_price=sale.price)
    item._state.adding, item._state.db = False, "default"
    item.product = Product(pk=sale.product_id, slug=sale.product_slug, name=sale.product_name)
    items = order.items.all()
    items._result_cache, items._prefetch_done = [item], True
    order._prefetched_objects_cache = {"items": items}
    return order


def release_order_units(sender, order, reason, **kwargs):
    """Receiver of orders.signals.order_released: a flash-sale order was cancelled or expired.

    Runs inside the transaction that changed the order's status, so the DB pool and the
    customer's quota grow back exactly when, and only if, the status change commits;
    a second expiry of the same order never gets here (its version check failed).
    Redis follows after the commit, at most once per order (restock.lua).
    """
    if order.source != Order.Source.SECKILL:
        return
    link = SeckillOrder.objects.get(order_id=order.pk)
    SeckillActivity.objects.filter(pk=link.activity_id).update(stock_available=F("stock_available") + link.quantity)
    SeckillQuota.objects.filter(activity_id=link.activity_id, user_id=link.user_id).update(
        units_held=F("units_held") - link.quantity
    )
    transaction.on_commit(
        partial(
            stock.restock,
            activity_id=link.activity_id,
            order_number=order.number,
            user_id=link.user_id,
            quantity=link.quantity,
            reservation_id=link.reservation_id,
        ),
        robust=True,
    )


# --- Payment deadlines ---------------------------------------------------------------


def expire_due_orders(*, activity_id, now=None, batch=500):
    """The per-order countdown: expire this sale's orders whose payment deadline has passed.

    purchase.lua puts each reservation in the sale's `due` sorted set with its deadline,
    in the same step that reserves it, so a purchase pays no extra round trip and no
    Celery message for its countdown; a beat job runs this every few seconds. Each
    order moves by order_expire's version-checked transition, so a paid order is left
    alone and a second run (two schedulers) expires nothing twice. Orders written later
    than their reservation (async tickets) have a later deadline and are moved to it.
    Returns how many orders this call expired.
    """
    now = now or timezone.now()
    due = stock.due_reservations(activity_id, until_ms=stock.server_time_ms(), batch=batch)
    if not due:
        return 0
    orders = {
        link.reservation_id: link.order
        for link in SeckillOrder.objects.filter(reservation_id__in=due).select_related("order")
    }
    waiting = set(
        SeckillTicket.objects.filter(
            pk__in=[r for r in due if r not in orders], status=SeckillTicket.Status.PENDING
        ).values_list("pk", flat=True)
    )
    expired, finished, later = 0, [], {}
    for reservation_id in due:
        order = orders.get(reservation_id)
        if order is None:
            if reservation_id not in waiting:  # never became an order: nothing to expire
                finished.append(reservation_id)
            continue
        if order.status == Order.Status.PENDING_PAYMENT and order.expires_at > now:
            later[reservation_id] = int(order.expires_at.timestamp() * 1000)
            continue
        if order.status == Order.Status.PENDING_PAYMENT:
            try:
                order_expire(order=order, now=now)
                expired += 1
            except InvalidState:
                pass  # paid or cancelled a moment ago
        finished.append(reservation_id)
    stock.forget_due(activity_id, finished)
    stock.postpone(activity_id, later)
    return expired


# --- Async mode ---------------------------------------------------------------------------


def ticket_create(*, sale, user_id, quantity, reservation_id, fencing_token, idempotency_key=None):
    """Record an accepted purchase before answering 202, then hand it to a worker.

    The ticket row is the durable promise: if the Celery message is lost, the sweep
    finds the pending ticket and sends it again.
    """
    from seckill.tasks import fulfil_ticket

    with transaction.atomic():
        ticket = SeckillTicket.objects.create(
            id=reservation_id,
            activity_id=sale.id,
            user_id=user_id,
            quantity=quantity,
            fencing_token=fencing_token,
            idempotency_key=idempotency_key or "",
        )
        transaction.on_commit(partial(fulfil_ticket.delay, ticket.pk), robust=True)
    return ticket


def ticket_fulfil(*, ticket_id):
    """Turn a pending ticket into its order, exactly once however often it is called.

    The ticket's status moves to done in the same transaction as the order, and the
    reservation id is unique on the order link, so a redelivered or duplicated task
    finds the order already there. A refusal by the DB (sold out, over the limit)
    fails the ticket and gives the reservation back.
    """
    ticket = SeckillTicket.objects.filter(pk=ticket_id).first()
    if ticket is None or ticket.status != SeckillTicket.Status.PENDING:
        return ticket
    sale = cache.sale_info(ticket.activity_id)
    try:
        seckill_order_create(
            sale=sale,
            user_id=ticket.user_id,
            quantity=ticket.quantity,
            reservation_id=ticket.pk,
            fencing_token=0,  # the customer lock was released at the 202; see _QUOTA_UPSERT
            idempotency_key=ticket.idempotency_key or None,
            ticket_id=ticket.pk,
        )
    except DuplicateReservation:
        pass
    except (SoldOut, LimitReached) as exc:
        failed = SeckillTicket.objects.filter(pk=ticket.pk, status=SeckillTicket.Status.PENDING).update(
            status=SeckillTicket.Status.FAILED, error_code=exc.code
        )
        if failed:
            stock.give_back(
                activity_id=ticket.activity_id,
                reservation_id=ticket.pk,
                back_on_sale=not isinstance(exc, _PoolEmpty),
            )
    ticket.refresh_from_db()
    return ticket


def stuck_tickets(older_than_s=30):
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    return SeckillTicket.objects.filter(status=SeckillTicket.Status.PENDING, created_at__lte=cutoff)

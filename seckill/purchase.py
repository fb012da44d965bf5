"""The purchase path of a flash sale: `purchase()` is its one entry, for the API and the page.

    0. the gates: purchase token, shared-IP buyer slot              (0-1 Redis round trips)
    1. sale settings and the "sold out" flag from process memory    (no network; a request
       with an Idempotency-Key goes on to the script, which may replay its first answer)
    2. purchase.lua: replay of an Idempotency-Key, rate limits,     (1 Redis round trip)
       window, limit, stock, reservation, deadline, order intent
    3. SECKILL_ACK=reserved: answer 202 "confirming" at once
       SECKILL_ACK=committed: wait (bounded) for the order writer   (1 blocking Redis call)
       to commit the intent's batch, then 201 with the order;
       202 "confirming" if it takes longer than SECKILL_ACK_WAIT_SECONDS

No database query and no lock: purchase.lua is the one point where a customer's
parallel requests are put in order, and the intent it appends is written by the order
writer (seckill/writer.py) in batches. The database still refuses an oversell, a unit
over the limit and a second order for one intent on its own (seckill/services/
order_write.py), so Redis is the fast gate, never the only guard. What each
acknowledgement level promises on a crash: docs/architecture.md, "Durability".

Every answer, success or refusal, is counted, timed and logged once, in process memory
(seckill/telemetry.py): one JSON line with the sale, the customer, the outcome code and
the request id, no extra network call.
"""

import logging
import time
import uuid

from django.db import DatabaseError
from django.utils import timezone

from core.errors import ShopError
from core.redis_errors import REDIS_ERRORS
from orders.models import Order, new_order_number
from orders.rows import order_as_written
from seckill import buckets, cache, intents, keys, purchase_token, services, shared_ip, stock, telemetry, writer
from seckill.conf import conf
from seckill.errors import Ended, LimitReached, NotFound, NotStarted, RateLimited, SoldOut, Unavailable
from seckill.models import SeckillRefusal
from seckill.outcome import PurchaseOutcome, pending_of

log = logging.getLogger(__name__)

__all__ = ["PurchaseOutcome", "purchase"]

_REFUSALS = {cls.code: cls for cls in (SoldOut, LimitReached, NotStarted, Ended)}
REPLAY_POLL_S = 0.02


def purchase(*, activity_id, user, quantity, idempotency_key=None, client_ip=None, token=None):
    """Buy `quantity` units of a sale for `user`; a PurchaseOutcome, or a ShopError saying why not.

    `idempotency_key` is the client's key, already checked (core/http.py): the same key
    of the same customer in the same sale gets the first answer again. `token` is the
    purchase token when the shop requires one (seckill/purchase_token.py); `client_ip`
    the address the rate limit and the shared-IP rule count by.
    """
    started, code = time.perf_counter(), "error"
    try:
        purchase_token.require(token, user_id=user.pk, activity_id=activity_id)
        with shared_ip.buyer_slot(activity_id=activity_id, user_id=user.pk, client_ip=client_ip):
            result = _purchase(activity_id, user, quantity, idempotency_key, client_ip)
        code = telemetry.outcome_of(result)
        return result
    except ShopError as exc:
        code = exc.code
        raise
    finally:
        telemetry.purchase_done(activity_id, user.pk, code, started)


def _purchase(activity_id, user, quantity, idempotency_key, client_ip):
    sale = cache.sale_info(activity_id)
    if sale is None or (not sale.is_enabled and not sale.is_published):
        raise NotFound("No such sale.")
    if not sale.is_published:  # never loaded into Redis: answer from the settings
        now = timezone.now()
        if now < sale.starts_at:
            raise NotStarted()
        if now >= sale.ends_at or not sale.is_enabled:
            raise Ended()
    if quantity > sale.per_user_limit:
        raise LimitReached(f"At most {sale.per_user_limit} per customer in this sale.")
    # The flag answers sold_out with no network call, except to a retry under an
    # Idempotency-Key: its first attempt may have bought a unit (the answer lost on the
    # way, a 503 after the script ran), and only purchase.lua knows, at one round trip.
    flagged_sold_out = cache.is_sold_out(activity_id)
    if flagged_sold_out and not idempotency_key:
        raise SoldOut()

    reservation_id, number = uuid.uuid4().hex, new_order_number()
    # A bucketed sale: the customer's home bucket (seckill/buckets.py); else the sale's keys.
    space = keys.home_space(sale.id, user.pk, sale.bucket_count) if sale.bucket_count > 1 else None

    def reserve(rate_limited=True):
        try:
            return stock.reserve(
                sale=sale,
                user_id=user.pk,
                quantity=quantity,
                reservation_id=reservation_id,
                number=number,
                client_ip=client_ip,
                idempotency_key=idempotency_key,
                space=space,
                rate_limited=rate_limited,
            )
        except REDIS_ERRORS as exc:
            raise _unavailable(sale.id, "reservation", exc) from exc

    result = reserve()
    if result.outcome == "unavailable":
        try:
            services.activity_warm(activity_id=sale.id)
        except (*REDIS_ERRORS, DatabaseError, Unavailable) as exc:
            raise _unavailable(sale.id, "warm-up", exc) from exc
        result = reserve()
    if space is not None and result.outcome in ("sold_out", "insufficient") and not flagged_sold_out:
        try:  # the home bucket is short: units move in from the reserve or another bucket
            result = buckets.serve(sale, space, quantity, result, lambda: reserve(rate_limited=False))
        except REDIS_ERRORS as exc:
            raise _unavailable(sale.id, "stock transfer", exc) from exc
    if result.outcome == "replay":
        return _replay(sale, user, result.value, idempotency_key)
    if result.outcome == "limit_reached" and idempotency_key:
        earlier = _order_under_key(sale, user, idempotency_key)  # Redis forgot the answer, the DB did not
        if earlier is not None:
            return PurchaseOutcome(order=earlier, replayed=True)
    if result.outcome != "ok":
        _refuse(result.outcome, result.value, sale)
    pending = pending_of(sale, number=number, quantity=quantity)
    if conf().ack == "reserved":
        return PurchaseOutcome(pending=pending)
    return _wait_for_commit(sale, user, reservation_id, pending, idempotency_key)


def _order_under_key(sale, user, idempotency_key):
    order_key = keys.order_idempotency_key(sale.id, idempotency_key)
    return Order.objects.filter(user=user, idempotency_key=order_key).first()


def _wait_for_commit(sale, user, reservation_id, pending, idempotency_key):
    """`committed` acknowledgement: the answer waits for the writer's COMMIT, within bounds."""
    try:
        if conf().writer_eager:  # tests: this request's thread runs the writer (seckill/writer.py)
            _drain_inline(sale)
        outcome = intents.wait_for(
            keys.home_space(sale.id, user.pk, sale.bucket_count),
            reservation_id,
            timeout_s=conf().ack_wait_seconds,
            client=stock.waiting_redis(),
        )
    except REDIS_ERRORS as exc:
        raise _unavailable(sale.id, "wait for the order", exc) from exc
    if outcome is None:
        return _still_confirming(sale, user, reservation_id, pending, idempotency_key)
    if outcome["outcome"] == intents.REFUSED:
        return _refused_by_the_database(sale, user, outcome["code"], outcome["detail"], idempotency_key)
    written = order_as_written(
        order_id=outcome["order_id"],
        item_id=outcome["item_id"],
        number=pending.number,
        user_id=user.pk,
        product=pending.product,
        quantity=pending.quantity,
        unit_price=sale.price,
        created_at=outcome["created_at"],
        expires_at=outcome["expires_at"],
        idempotency_key=keys.order_idempotency_key(sale.id, idempotency_key),
    )
    return PurchaseOutcome(order=written.order, items=written.items)


def _still_confirming(sale, user, reservation_id, pending, idempotency_key):
    """The wait ran out: 202 "confirming" only if the intent is still waiting in Redis.

    The wait is a second connection, made after the script answered. If Redis was
    restarted empty in between (the pool reconnects to the new server), the wait listens
    on a server that never had the intent, which is lost: a 202 then would promise an
    order that never comes. So the order number must still be pending in the Redis that
    is asked now; else the intent was settled meanwhile (its order or its refusal is in
    the database) or it is gone, and the answer is 503, which promises nothing. One more
    round trip, on the slow path only."""
    space = keys.home_space(sale.id, user.pk, sale.bucket_count)
    try:
        if intents.pending_order(space, pending.number) is not None:
            return PurchaseOutcome(pending=pending)  # 202 confirming: the writer is behind
    except REDIS_ERRORS as exc:
        raise _unavailable(sale.id, "wait for the order", exc) from exc
    order = Order.objects.filter(number=pending.number, user=user).first()
    if order is not None:
        return PurchaseOutcome(order=order)
    refusal = SeckillRefusal.objects.filter(reservation_id=reservation_id).first()
    if refusal is not None:
        return _refused_by_the_database(sale, user, refusal.code, refusal.detail, idempotency_key)
    log.warning("sale %s: intent %s is not in Redis any more and has no order: 503", sale.id, reservation_id)
    raise Unavailable("Your purchase could not be confirmed; please try again.")


def _refused_by_the_database(sale, user, code, detail, idempotency_key):
    """The writer refused the intent: say why, or, for a second order under one
    Idempotency-Key (Redis had forgotten the first answer), answer with the first order."""
    if code == "duplicate" and idempotency_key:
        earlier = _order_under_key(sale, user, idempotency_key)
        if earlier is not None:
            return PurchaseOutcome(order=earlier, replayed=True)
    if code == SoldOut.code:
        cache.mark_sold_out(sale.id)
    raise _REFUSALS.get(code, Unavailable)(detail)


def _replay(sale, user, first, idempotency_key):
    """The first answer to this Idempotency-Key, as it stands now.

    In `committed` mode a replay of an order still being written waits for it like the
    first request does (the same bound), polling the order row: a retry gets the same
    answer as the request it repeats. Replays are rare, so the polling costs little.
    """
    kind, _, number = first.partition(":")
    if kind != "ok":
        _refuse(kind, number, sale)
    deadline = time.monotonic() + (conf().ack_wait_seconds if conf().ack == "committed" else 0)
    while True:
        order = Order.objects.filter(number=number, user=user).first()
        if order is not None:
            return PurchaseOutcome(order=order, replayed=True)
        refusal = SeckillRefusal.objects.filter(order_number=number, user=user).first()
        if refusal is not None:
            return _refused_by_the_database(sale, user, refusal.code, refusal.detail, idempotency_key)
        if time.monotonic() >= deadline:
            break
        if conf().writer_eager:
            _drain_inline(sale)
        time.sleep(REPLAY_POLL_S)
    found = intents.pending_order(keys.home_space(sale.id, user.pk, sale.bucket_count), number)
    quantity = found[2] if found else 1
    return PurchaseOutcome(pending=pending_of(sale, number=number, quantity=quantity), replayed=True)


def _refuse(outcome, value, sale):
    if outcome == "sold_out":
        cache.mark_sold_out(sale.id)
        raise SoldOut()
    if outcome == "insufficient":
        raise SoldOut(f"Only {value} left; ask for fewer.", available=int(value))
    if outcome == "limit_reached":
        raise LimitReached(
            f"You already hold {value} of the {sale.per_user_limit} allowed per customer.", held=int(value)
        )
    if outcome == "not_started":
        raise NotStarted(f"The sale starts in {max(int(value) // 1000, 1)} s.", starts_in_ms=int(value))
    if outcome == "ended":
        raise Ended()
    if outcome == "rate_limited":
        raise RateLimited()
    raise Unavailable()


def _drain_inline(sale):
    try:
        writer.drain(sale.id)
    except DatabaseError:
        log.warning("sale %s: the inline writer could not write; the intents wait", sale.id)


def _unavailable(activity_id, step, exc):
    log.warning("sale %s: 503 at the %s step: %r", activity_id, step, exc)
    return Unavailable()

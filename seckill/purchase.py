"""The purchase path of a flash sale (DESIGN.md §5). Start reading here.

    1. sale settings and the "sold out" flag from process memory  (no network)
    2. the customer's lock; a second tab waits its turn            (1 Redis round trip)
    3. purchase.lua: rate limits, window, limit, stock, reserve    (1 Redis round trip)
    4. the order transaction, every invariant checked by the DB    (sync mode)
       or a durable ticket and a Celery task                       (async mode)
    5. the lock released by token                                  (1 Redis round trip)

The lock keeps one customer's parallel clicks, tabs and retries from racing each
other; it is an efficiency measure, not the guard. If it is lost (a pause longer than
its lease), the fencing token makes the stale holder's DB write fail, and the DB's
own constraints (seckill/models.py) still refuse an oversell or a second unit over
the limit. Any failure after step 3 gives the reservation back, so a unit is never
lost to an error (I2).
"""

import json
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from core.errors import ShopError
from locks import LockNotOwnedError, RedisLock, StaleTokenError
from orders.models import Order
from seckill import cache, keys, services, stock
from seckill.errors import Busy, Ended, LimitReached, NotFound, NotStarted, RateLimited, SoldOut, Unavailable

log = logging.getLogger(__name__)

# Refusals that are final for a given request; a retry with the same Idempotency-Key
# gets the same answer. Busy, rate limits and outages are worth retrying, so they are
# not remembered.
_REMEMBERED_REFUSALS = {cls.code: cls for cls in (SoldOut, LimitReached, NotStarted, Ended)}


@dataclass(frozen=True)
class PurchaseOutcome:
    order: Order | None = None
    ticket_id: str | None = None
    replayed: bool = False

    @property
    def status(self):
        return 201 if self.order is not None else 202


def purchase(*, activity_id, user, quantity, idempotency_key=None, client_ip=None):
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
    if cache.is_sold_out(activity_id):
        raise SoldOut()

    # All customer locks of a sale share one fencing counter (fence_scope): tokens
    # only need to grow per customer, and one counter per sale is seeded once per sale
    # instead of once per customer.
    lock = RedisLock(
        keys.customer_lock_name(activity_id, user.pk),
        ttl=settings.SECKILL_CUSTOMER_LOCK_TTL,
        fence_scope=f"seckill:{activity_id}",
        metric_label="seckill_customer",
    )
    try:
        acquired = lock.acquire(blocking=True, timeout=settings.SECKILL_CUSTOMER_LOCK_WAIT)
    except RedisError as exc:
        raise _unavailable(activity_id, "customer lock", exc) from exc
    if not acquired:
        raise Busy("Your previous request for this sale is still being processed.")
    try:
        if idempotency_key:
            replay = _replay(activity_id, user.pk, idempotency_key)
            if replay is not None:
                return replay
        try:
            outcome = _reserve_and_write(sale, user, quantity, idempotency_key, client_ip, lock)
        except _Replay as replay:
            return replay.outcome
        except ShopError as exc:
            if idempotency_key and exc.code in _REMEMBERED_REFUSALS:
                _remember(activity_id, user.pk, idempotency_key, {"error": [exc.code, exc.detail]})
            raise
        if idempotency_key:
            _remember(activity_id, user.pk, idempotency_key, _answer_of(outcome))
        return outcome
    finally:
        _release(lock)


def _reserve_and_write(sale, user, quantity, idempotency_key, client_ip, lock):
    reservation_id = uuid.uuid4().hex
    reserve = _reserve_call(sale, user.pk, quantity, reservation_id, client_ip)
    order_key = keys.order_idempotency_key(sale.id, idempotency_key)
    result = reserve()
    if result.outcome == "unavailable":
        try:
            services.activity_warm(activity_id=sale.id)
        except (RedisError, DatabaseError, Unavailable) as exc:
            raise _unavailable(sale.id, "warm-up", exc) from exc
        result = reserve()
    _raise_for(result, sale, user, order_key)

    try:
        if settings.SECKILL_ORDER_MODE == "async":
            ticket = services.ticket_create(
                sale=sale,
                user_id=user.pk,
                quantity=quantity,
                reservation_id=reservation_id,
                fencing_token=lock.fencing_token,
                idempotency_key=order_key,
            )
            return PurchaseOutcome(ticket_id=f"{sale.id}-{ticket.pk}")
        order = services.seckill_order_create(
            sale=sale,
            user_id=user.pk,
            quantity=quantity,
            reservation_id=reservation_id,
            fencing_token=lock.fencing_token,
            idempotency_key=order_key,
        )
        return PurchaseOutcome(order=order)
    except SoldOut as exc:  # the DB pool was empty although Redis had a unit: Redis was ahead
        _give_back(sale.id, reservation_id, back_on_sale=False)
        cache.mark_sold_out(sale.id)
        raise SoldOut() from exc
    except services.DuplicateReservation:
        _give_back(sale.id, reservation_id)
        existing = _order_by_key(user, order_key)
        if existing is None:
            raise
        return PurchaseOutcome(order=existing, replayed=True)
    except StaleTokenError as exc:
        _give_back(sale.id, reservation_id)
        raise Busy("Your request overlapped with another one; please try again.") from exc
    except ShopError:
        _give_back(sale.id, reservation_id)
        raise
    except (DatabaseError, RedisError) as exc:
        log.exception("sale %s: order write failed, reservation %s given back", sale.id, reservation_id)
        _give_back(sale.id, reservation_id)
        raise Unavailable() from exc
    except BaseException:
        _give_back(sale.id, reservation_id)
        raise


def _reserve_call(sale, user_id, quantity, reservation_id, client_ip):
    def call():
        try:
            return stock.reserve(
                activity_id=sale.id,
                user_id=user_id,
                quantity=quantity,
                reservation_id=reservation_id,
                client_ip=client_ip,
            )
        except RedisError as exc:
            raise _unavailable(sale.id, "reservation", exc) from exc

    return call


def _raise_for(result, sale, user, order_key):
    outcome = result.outcome
    if outcome == "ok":
        return
    if outcome == "sold_out":
        cache.mark_sold_out(sale.id)
        raise SoldOut()
    if outcome == "insufficient":
        raise SoldOut(f"Only {result.value} left; ask for fewer.", available=result.value)
    if outcome == "limit_reached":
        existing = _order_by_key(user, order_key)
        if existing is not None:  # Redis forgot the answer, the DB did not
            raise _Replay(PurchaseOutcome(order=existing, replayed=True))
        raise LimitReached(
            f"You already hold {result.value} of the {sale.per_user_limit} allowed per customer.", held=result.value
        )
    if outcome == "not_started":
        raise NotStarted(f"The sale starts in {max(result.value // 1000, 1)} s.", starts_in_ms=result.value)
    if outcome == "ended":
        raise Ended()
    if outcome == "rate_limited":
        raise RateLimited()
    raise Unavailable()


def _unavailable(activity_id, step, exc):
    log.warning("sale %s: 503 at the %s step: %r", activity_id, step, exc)
    return Unavailable()


class _Replay(Exception):
    def __init__(self, outcome):
        self.outcome = outcome


def _order_by_key(user, order_key):
    if not order_key:
        return None
    return Order.objects.filter(user=user, idempotency_key=order_key).first()


def _give_back(activity_id, reservation_id, back_on_sale=True):
    """Best effort: if Redis is unreachable the reservation stays open and the stranded
    sweep (or `reconcile --fix`) returns it after the grace period."""
    try:
        stock.give_back(activity_id=activity_id, reservation_id=reservation_id, back_on_sale=back_on_sale)
    except RedisError:
        log.warning("sale %s: could not give back reservation %s now; the sweep will", activity_id, reservation_id)


def _release(lock):
    try:
        lock.release()
    except LockNotOwnedError:
        log.warning("customer lock %s expired before release; the DB write was fenced", lock.name)
    except RedisError:
        log.warning("customer lock %s not released (Redis error); it expires on its own", lock.name)


# --- Idempotency-Key answers --------------------------------------------------------------


def _answer_of(outcome):
    if outcome.order is not None:
        return {"order": outcome.order.number}
    return {"ticket": outcome.ticket_id}


def _remember(activity_id, user_id, key, answer):
    try:
        stock.redis().set(
            keys.idempotent_answer(activity_id, user_id, key),
            json.dumps(answer),
            ex=settings.SECKILL_IDEMPOTENCY_TTL_SECONDS,
        )
    except RedisError:
        log.warning("sale %s: could not remember the answer for an idempotency key", activity_id)


def _replay(activity_id, user_id, key):
    raw = stock.redis().get(keys.idempotent_answer(activity_id, user_id, key))
    if raw is None:
        return None
    answer = json.loads(raw)
    if "order" in answer:
        return PurchaseOutcome(order=Order.objects.get(number=answer["order"]), replayed=True)
    if "ticket" in answer:
        return PurchaseOutcome(ticket_id=answer["ticket"], replayed=True)
    code, detail = answer["error"]
    raise _REMEMBERED_REFUSALS[code](detail)

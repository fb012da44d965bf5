"""The purchase path of a flash sale: `purchase()` is its one entry, for the API and the page.

    0. the gates: purchase token, shared-IP buyer slot                (0-1 Redis round trips)
    1. sale settings and the "sold out" flag from process memory      (no network)
    2. the customer's lock; a second tab waits its turn               (1 Redis round trip)
    3. the Idempotency-Key's earlier answer, if any                   (1 Redis round trip, keyed requests only)
    4. purchase.lua: rate limits, window, limit, stock, reserve       (1 Redis round trip)
    5. the order transaction, every invariant checked by the DB       (sync mode)
       or a durable ticket and a Celery task                          (async mode)
    6. the lock released by token                                     (1 Redis round trip)

The lock keeps one customer's parallel clicks, tabs and retries from racing each
other; it is an efficiency measure, not the guard. If it is lost (a pause longer than
its lease, as in the incident told in docs/architecture.md), the fencing token makes
the stale holder's DB write fail, and the DB's own constraints (seckill/models.py)
still refuse an oversell or a second unit over the limit. Any failure after step 4
gives the reservation back, so a unit is never lost to an error (I2).
"""

import logging
import uuid

from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from core.errors import ShopError
from locks import RedisLock, StaleTokenError
from locks.holding import release_quietly
from seckill import cache, idempotency, keys, purchase_token, services, shared_ip, stock
from seckill.conf import conf
from seckill.errors import Busy, Ended, LimitReached, NotFound, NotStarted, RateLimited, SoldOut, Unavailable
from seckill.outcome import PurchaseOutcome
from seckill.tasks import fulfil_ticket

log = logging.getLogger(__name__)

__all__ = ["PurchaseOutcome", "purchase"]


def purchase(*, activity_id, user, quantity, idempotency_key=None, client_ip=None, token=None):
    """Buy `quantity` units of a sale for `user`; a PurchaseOutcome, or a ShopError saying why not.

    `idempotency_key` is the client's key, already checked (core/http.py); `token` the
    purchase token when the shop requires one (seckill/purchase_token.py); `client_ip`
    the address the rate limit and the shared-IP rule count by.
    """
    purchase_token.require(token, user_id=user.pk, activity_id=activity_id)
    with shared_ip.buyer_slot(activity_id=activity_id, user_id=user.pk, client_ip=client_ip):
        return _purchase(activity_id, user, quantity, idempotency_key, client_ip)


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
    if cache.is_sold_out(activity_id):
        raise SoldOut()

    lock = RedisLock(
        keys.customer_lock_name(activity_id, user.pk),
        ttl=conf().customer_lock_ttl,
        fence_scope=keys.fence_scope(activity_id),
        metric_label="seckill_customer",
    )
    try:
        acquired = lock.acquire(blocking=True, timeout=conf().customer_lock_wait)
    except RedisError as exc:
        raise _unavailable(activity_id, "customer lock", exc) from exc
    if not acquired:
        raise Busy("Your previous request for this sale is still being processed.")
    try:
        return idempotency.answer_once(
            activity_id=activity_id,
            user=user,
            key=idempotency_key,
            attempt=lambda: _reserve_and_write(sale, user, quantity, idempotency_key, client_ip, lock),
        )
    finally:
        release_quietly(lock, lost_message="the order write was fenced")


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
        if conf().is_async:
            ticket = services.ticket_create(
                sale=sale,
                user_id=user.pk,
                quantity=quantity,
                reservation_id=reservation_id,
                fencing_token=lock.fencing_token,
                idempotency_key=order_key,
                enqueue=fulfil_ticket.delay,
            )
            return PurchaseOutcome(ticket_id=f"{sale.id}-{ticket.pk}")
        written = services.seckill_order_create(
            sale=sale,
            user_id=user.pk,
            quantity=quantity,
            reservation_id=reservation_id,
            fencing_token=lock.fencing_token,
            idempotency_key=order_key,
        )
        return PurchaseOutcome(order=written.order, items=written.items)
    except SoldOut as exc:  # the DB pool was empty although Redis had a unit: Redis was ahead
        _give_back(sale.id, reservation_id, back_on_sale=False)
        cache.mark_sold_out(sale.id)
        raise SoldOut() from exc
    except services.DuplicateReservation:
        _give_back(sale.id, reservation_id)
        existing = idempotency.order_under_key(user, order_key)
        if existing is None:
            raise
        raise idempotency.Replay(existing) from None
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
        existing = idempotency.order_under_key(user, order_key)
        if existing is not None:  # Redis forgot the answer, the DB did not
            raise idempotency.Replay(existing)
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


def _give_back(activity_id, reservation_id, back_on_sale=True):
    """Best effort: if Redis is unreachable the reservation stays open and the stranded
    sweep (or `reconcile --fix`) returns it after the grace period."""
    try:
        stock.give_back(activity_id=activity_id, reservation_id=reservation_id, back_on_sale=back_on_sale)
    except RedisError:
        log.warning("sale %s: could not give back reservation %s now; the sweep will", activity_id, reservation_id)

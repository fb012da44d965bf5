"""Idempotency-Key for flash-sale purchases: the same key of the same customer in the same
sale gets the first answer, however often it is sent.

Two places remember an answer, and a replay looks in both:
- Redis keeps the answer (an order number, a ticket, or a final refusal) for
  SECKILL_IDEMPOTENCY_TTL_SECONDS under the sale's hash tag (seckill/keys.py);
- the order itself carries the key (scoped to the sale, `keys.order_idempotency_key`)
  under a unique (customer, key) index, so even when Redis has forgotten the answer a
  retry finds its order, and a second order under one key is refused by the database.

Only final refusals are remembered (sold out, limit reached, not started, ended): busy,
rate-limited and unavailable are worth retrying with the same key. The whole exchange
runs under the customer's lock (seckill/purchase.py), so two requests with one key
cannot both miss the remembered answer and both reserve.
"""

import json
import logging

from redis.exceptions import RedisError

from orders.models import Order
from seckill import keys, stock
from seckill.conf import conf
from seckill.errors import Ended, LimitReached, NotStarted, SoldOut
from seckill.outcome import PurchaseOutcome

log = logging.getLogger(__name__)

REMEMBERED_REFUSALS = {cls.code: cls for cls in (SoldOut, LimitReached, NotStarted, Ended)}


class Replay(Exception):
    """Raised from inside a purchase attempt that found its key's earlier order."""

    def __init__(self, order):
        super().__init__(order.number)
        self.outcome = PurchaseOutcome(order=order, replayed=True)


def answer_once(*, activity_id, user, key, attempt):
    """`attempt()`'s outcome, or the first answer already given to this key."""
    if not key:
        return attempt()
    earlier = _recall(activity_id, user.pk, key)
    if earlier is not None:
        return earlier
    try:
        outcome = attempt()
    except Replay as replay:
        outcome = replay.outcome
    except tuple(REMEMBERED_REFUSALS.values()) as refusal:
        _remember(activity_id, user.pk, key, {"error": [refusal.code, refusal.detail]})
        raise
    _remember(activity_id, user.pk, key, _answer_of(outcome))
    return outcome


def order_under_key(user, order_key):
    """The customer's order stored under this (sale-scoped) key, or None."""
    if not order_key:
        return None
    return Order.objects.filter(user=user, idempotency_key=order_key).first()


def _answer_of(outcome):
    if outcome.order is not None:
        return {"order": outcome.order.number}
    return {"ticket": outcome.ticket_id}


def _remember(activity_id, user_id, key, answer):
    try:
        stock.redis().set(
            keys.idempotent_answer(activity_id, user_id, key), json.dumps(answer), ex=conf().idempotency_ttl_seconds
        )
    except RedisError:
        log.warning("sale %s: could not remember the answer for an idempotency key", activity_id)


def _recall(activity_id, user_id, key):
    raw = stock.redis().get(keys.idempotent_answer(activity_id, user_id, key))
    if raw is None:
        return None
    answer = json.loads(raw)
    if "order" in answer:
        return PurchaseOutcome(order=Order.objects.get(number=answer["order"]), replayed=True)
    if "ticket" in answer:
        return PurchaseOutcome(ticket_id=answer["ticket"], replayed=True)
    code, detail = answer["error"]
    raise REMEMBERED_REFUSALS[code](detail)

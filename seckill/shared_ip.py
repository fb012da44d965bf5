"""Optional rule: at most SECKILL_BUYERS_PER_IP accounts buy in one sale from one client address.

The per-customer limit (I3) is per account; a scalper with fifty accounts behind one
address gets fifty units. With SECKILL_BUYERS_PER_IP = N > 0, the N-th distinct
account that buys from an address takes the last "buyer slot" of that address for
the sale, and every further account from it is refused with 409 limit_reached.
Off (0) by default: many honest customers share one address (offices, universities,
mobile carriers' NAT), and they would be refused too (docs/security.md).

Why it is safe:
- a slot is claimed before the purchase and counted in the same Redis transaction
  (SADD + SCARD in MULTI), so two accounts racing from one address cannot both take
  the last slot;
- a purchase that fails gives its claim back, so a refusal (sold out, limit, busy)
  never costs the address a slot; an account that already bought from the address
  keeps its slot and is never refused by this rule;
- keys carry the sale's hash tag and expire a week after the sale, like its other keys.
The rule is the second gate of purchase() (seckill/purchase.py), before the sale is even read.
"""

import contextlib

from core.redis_errors import REDIS_ERRORS
from seckill import cache, keys, stock
from seckill.conf import conf
from seckill.errors import LimitReached, Unavailable


def buyers_from(activity_id, client_ip):
    """Ids of the accounts holding a slot of this address (for tests and support)."""
    return {int(m) for m in stock.redis().smembers(keys.buyers_from_ip(activity_id, client_ip))}


@contextlib.contextmanager
def buyer_slot(*, activity_id, user_id, client_ip):
    """Hold a buyer slot of `client_ip` for the block; give it back if the block raises."""
    limit = conf().buyers_per_ip
    sale = cache.sale_info(activity_id) if limit > 0 and client_ip else None
    if sale is None:  # rule off, no address, or no such sale (purchase() answers 404)
        yield
        return
    key = keys.buyers_from_ip(activity_id, client_ip)
    client = stock.redis()
    try:
        with client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, user_id)
            pipe.scard(key)
            pipe.expireat(key, sale.ends_at + stock.KEEP_AFTER_END)
            added, holders, _ = pipe.execute()
    except REDIS_ERRORS as exc:
        raise Unavailable() from exc
    if added and holders > limit:
        _give_back(client, key, user_id)
        raise LimitReached(
            f"Only {limit} account{'s' if limit != 1 else ''} per network may buy in this sale, "
            "and another account from your network already has.",
            rule="buyers_per_ip",
        )
    try:
        yield
    except BaseException:
        if added:
            _give_back(client, key, user_id)
        raise


def _give_back(client, key, user_id):
    with contextlib.suppress(*REDIS_ERRORS):  # best effort: the slot then expires with the sale's keys
        client.srem(key, user_id)

"""Purchase tokens: a purchase must come from somebody who loaded the sale shortly before it.

When SECKILL_PURCHASE_TOKEN_REQUIRED is on, `POST .../purchase/` (header
`Purchase-Token`) and the sale page's buy form (field `purchase_token`) need a token
that the sale page, or `GET /api/seckill/activities/<id>/token/`, hands out only from
SECKILL_PURCHASE_TOKEN_LEAD_SECONDS before the start. A bot can no longer fire
purchases for a sale it has not asked about shortly before, nor prepare requests
days ahead, and each token costs it an authenticated request that can be watched.

Why it is safe:
- the token is signed with SECRET_KEY (django.core.signing, its own salt) and carries
  the customer and the sale, so it cannot be forged, nor used by another account or
  for another sale;
- it is timestamped and refused after SECKILL_PURCHASE_TOKEN_MAX_AGE_SECONDS, so a
  token harvested early is worthless by the time it matters;
- "shortly before the start" is measured on Redis's clock, the same clock purchase.lua
  checks the sale window against, so a web worker with a skewed clock cannot hand
  tokens out early;
- it is stateless: no write per token, nothing to clean up. It is not single-use (a
  retry or a second tab must work); double purchases are stopped by the per-customer
  limit, the customer lock and the Idempotency-Key, not by this token.
"""

from dataclasses import dataclass

from django.core import signing

from core.errors import ShopError
from core.redis_errors import REDIS_ERRORS
from seckill import cache, stock
from seckill.conf import conf
from seckill.errors import Ended, NotFound, NotStarted, Unavailable

SALT = "seckill.purchase-token.v1"
MAX_TOKEN_LENGTH = 512  # a real token is ~70 characters; anything longer is not worth unsigning


class PurchaseTokenRequired(ShopError):
    code = "purchase_token_required"
    status = 403
    default_detail = "This sale needs a purchase token: open the sale page shortly before the start and buy from there."


class PurchaseTokenInvalid(ShopError):
    code = "purchase_token_invalid"
    status = 403
    default_detail = "The purchase token is not valid for this sale; reload the sale page to get a new one."


@dataclass(frozen=True)
class IssuedToken:
    token: str
    max_age: int


def is_required():
    return conf().purchase_token_required


def _ms(dt):
    return int(dt.timestamp() * 1000)


def issue(*, user_id, activity_id):
    """A token for this customer and sale, if the sale starts within the lead time or is live."""
    sale = cache.sale_info(activity_id)
    if sale is None or (not sale.is_enabled and not sale.is_published):
        raise NotFound("No such sale.")
    try:
        now_ms = stock.server_time_ms()
    except REDIS_ERRORS as exc:
        raise Unavailable() from exc
    if not sale.is_enabled or now_ms >= _ms(sale.ends_at):
        raise Ended()
    lead_ms = conf().purchase_token_lead_seconds * 1000
    opens_ms = _ms(sale.starts_at) - lead_ms
    if now_ms < opens_ms:
        raise NotStarted(
            f"Purchase tokens for this sale are handed out from {lead_ms // 1000} s before the start, "
            f"in {max((opens_ms - now_ms) // 1000, 1)} s.",
            token_in_ms=opens_ms - now_ms,
        )
    token = signing.dumps({"u": user_id, "a": activity_id}, salt=SALT, compress=False)
    return IssuedToken(token=token, max_age=conf().purchase_token_max_age_seconds)


def verify(token, *, user_id, activity_id):
    """Raise PurchaseTokenRequired or PurchaseTokenInvalid unless `token` is good for this purchase."""
    if not token:
        raise PurchaseTokenRequired()
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise PurchaseTokenInvalid()
    try:
        claims = signing.loads(token, salt=SALT, max_age=conf().purchase_token_max_age_seconds)
    except signing.SignatureExpired as exc:
        raise PurchaseTokenInvalid("The purchase token has expired; reload the sale page to get a new one.") from exc
    except signing.BadSignature as exc:
        raise PurchaseTokenInvalid() from exc
    if not isinstance(claims, dict) or claims.get("u") != user_id or claims.get("a") != activity_id:
        raise PurchaseTokenInvalid("The purchase token belongs to another customer or another sale.")


def require(token, *, user_id, activity_id):
    """The check the API and the buy form run before purchase(); a no-op when tokens are off."""
    if is_required():
        verify(token, user_id=user_id, activity_id=activity_id)

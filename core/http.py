"""What the shop reads from an incoming request, in one place for the pages and the API.

- `client_ip`: the peer address the login lockout, the purchase rate limits and the
  shared-IP rule count by. Behind a proxy, configure the proxy to overwrite REMOTE_ADDR
  (docs/security.md); a client-sent X-Forwarded-For is never trusted here, so a bot
  cannot pick a fresh address per request.
- `clean_idempotency_key`: the Idempotency-Key of a checkout or a flash-sale purchase,
  from the API header or the page's hidden field; a malformed key is refused before
  anything is written.
"""

import re

from core.errors import InvalidInput

IDEMPOTENCY_HEADER_NAME = "Idempotency-Key"
_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def client_ip(request):
    """The peer address, or "" when there is no request or the server gave none."""
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR") or ""


def clean_idempotency_key(key):
    """None for no key; the key itself if well-formed; InvalidInput otherwise."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY_RE.match(key):
        raise InvalidInput("An idempotency key is 1 to 64 letters, digits or _ . : - characters.")
    return key


def idempotency_key_from(request):
    """The request's Idempotency-Key header, checked (InvalidInput if malformed)."""
    return clean_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER_NAME))

"""A request id for every request: taken from X-Request-ID when it is sane, else made here.

The id is bound to structlog's context for the time of the request, so every line
logged while it runs carries `request_id` (config/logs.py), and it goes back in the
response's X-Request-ID header, so a customer's report or a proxy's log leads to the
shop's lines. An incoming id is kept only if it is 1-128 characters of letters, digits
and `-_.:`; anything else (too long, spaces, quotes, newlines: a forged log line) is
replaced by a fresh one. Costs a regex match or a uuid4, and two context-variable sets.
"""

import re
import uuid

from structlog.contextvars import bind_contextvars, reset_contextvars

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def request_id_from(value):
    """The incoming id if sane, else a new one (32 hex digits)."""
    if value and _SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        tokens = bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_contextvars(**tokens)
        response[HEADER] = request_id
        return response

"""A dependency that drops answers 503 "try again", never a 500.

When MariaDB or Redis fails under a request (a restart, a killed connection, a timeout),
the request cannot finish, but nothing about it is a bug: the API answers 503
`{"code": "unavailable", ...}` and a page answers the shop's "try again" page with 503,
both with `Retry-After`. Three places catch such an error, because it can be raised in
three places:

- DRF views, including DRF's token lookup that runs before the view's own code:
  `core/api_errors.py` (the API's exception handler) calls `outage_response`;
- other views (the pages): `OutageMiddleware.process_exception`;
- middleware outside the views (sessions read and written in Redis and the DB, the
  lazy user): Django turns the exception into its handler500, and `config/errors.py`
  asks `is_outage` about the exception being handled.

Why this is safe, i.e. nothing is half-written: every write of the shop runs inside
`transaction.atomic()` (core/db.py, orders/services.py, seckill/services/), and the
error leaves the atomic block before it reaches any of these handlers, so the block has
rolled back (or the server dropped the connection, which rolls back too). The handlers
only choose the answer; they write nothing and call no dependency (the 503 page is
rendered without the request's context processors, which would read the session).

Errors that a retry would not cure stay 500s and are logged as bugs: IntegrityError
(a constraint said no where the code should have checked first), DataError and
ProgrammingError (bad SQL or values).
"""

import logging

from django.db import DataError, IntegrityError, ProgrammingError
from django.db.utils import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django_redis.exceptions import ConnectionInterrupted

from core.redis_errors import REDIS_ERRORS

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DETAIL = "The shop cannot take this request right now; please try again shortly."

_OUTAGES = (DatabaseError, *REDIS_ERRORS, ConnectionInterrupted)  # a cluster's errors too (core/redis_errors.py)
_BUGS = (IntegrityError, DataError, ProgrammingError)


def is_outage(exc):
    """True for an error of MariaDB or Redis being unreachable, dropped or overloaded."""
    return isinstance(exc, _OUTAGES) and not isinstance(exc, _BUGS)


def note(request, exc):
    log.warning("503 for %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)


def api_body():
    return {"code": "unavailable", "detail": DETAIL}


def outage_response(request, exc):
    """The 503 for `request`: JSON under /api/, the "try again" page elsewhere."""
    note(request, exc)
    if request.path.startswith("/api/"):
        response = JsonResponse(api_body(), status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OutageMiddleware:
    """A page view that fails on MariaDB or Redis answers the "try again" page (503)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_outage(exception):
            return outage_response(request, exception)
        return None

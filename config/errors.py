"""404/500 handlers: JSON under /api/, the shop's own pages elsewhere.

Django calls handler500 while it handles the exception, so `sys.exception()` is the
error; when that is MariaDB or Redis dropping (core/outage.py), raised by a middleware
outside any view (the session, the lazy user), the answer is the 503 "try again"
instead of a 500.
"""

import sys

from django.views import defaults

from core.api_errors import json_page_not_found, json_server_error
from core.outage import is_outage, outage_response


def page_not_found(request, exception):
    if request.path.startswith("/api/"):
        return json_page_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    exc = sys.exception()
    if exc is not None and is_outage(exc):
        return outage_response(request, exc)
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)

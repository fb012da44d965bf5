"""404/500 handlers: JSON under /api/, the shop's own pages elsewhere."""

from django.views import defaults

from core.api_errors import json_page_not_found, json_server_error


def page_not_found(request, exception):
    if request.path.startswith("/api/"):
        return json_page_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)

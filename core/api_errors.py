"""Every API error is JSON `{code, detail}`; validation errors add `errors` per field.

`code` is stable and machine-readable, `detail` is a sentence for a human. MariaDB or
Redis failing under a request (also in DRF's token lookup, before the view runs) is a
503 `unavailable` (core/outage.py says why that is safe). Other unknown exceptions are
left to Django (a 500 that is logged), never dressed up as a 4xx.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from core import outage
from core.errors import ShopError

# DRF's codes renamed to the shop's own (README.md "API in one glance") where they differ.
_CODE_ALIASES = {"throttled": "rate_limited", "authentication_failed": "not_authenticated"}


def error_body(code, detail, **extra):
    return {"code": code, "detail": str(detail), **extra}


def _first_message(data, path=""):
    """The first human-readable message in a nested DRF error structure, with its field path."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "non_field_errors":
                prefix = path
            elif isinstance(key, int):
                prefix = f"{path}[{key}]"
            else:
                prefix = f"{path}.{key}" if path else str(key)
            return _first_message(value, prefix)
    if isinstance(data, list) and data:
        if all(isinstance(v, (dict, list)) for v in data):
            for index, value in enumerate(data):
                if value:
                    return _first_message(value, f"{path}[{index}]")
        return _first_message(data[0], path)
    return f"{path}: {data}" if path else str(data)


def json_exception_handler(exc, context):
    if isinstance(exc, ShopError):
        return Response(error_body(exc.code, exc.detail, **exc.extra), status=exc.status)
    if outage.is_outage(exc):
        set_rollback()  # an outer atomic block (ATOMIC_REQUESTS) must not commit half a request
        outage.note(context["request"], exc)
        return Response(outage.api_body(), status=503, headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", _first_message(exc.detail), errors=response.data)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(_CODE_ALIASES.get(code, code), getattr(exc, "detail", str(exc)))
    return response


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not declare.

    A client that sends `price`, `status`, `user` or `version` is told so with a 400,
    instead of believing the shop took them into account.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unexpected = sorted(set(data) - set(self.fields))
            if unexpected:
                raise serializers.ValidationError(
                    {name: ["This field cannot be set."] for name in unexpected}, code="unexpected_field"
                )
        return super().to_internal_value(data)


def json_page_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def json_server_error(request):
    return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)

"""OpenAPI schema details drf-spectacular cannot infer on its own.

Imported by config/urls.py, before the schema view can run, so the extension is registered.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every API error (core/api_errors.py); validation errors add `errors` per field."""

    code = serializers.CharField(help_text="Stable, machine-readable, e.g. not_found, sold_out.")
    detail = serializers.CharField(help_text="A sentence for a human.")


# What DRF's PageNumberPagination accepts: a number from 1, "last", or empty for the first page.
PAGE_PARAMETER = OpenApiParameter(
    "page",
    {"type": "string", "pattern": "^([0-9]*|last)$"},
    OpenApiParameter.QUERY,
    description="Page number from 1, or `last`; empty means the first page. A page past the end is a 404.",
)


# The optional Idempotency-Key header of a checkout and of a flash-sale purchase (core/http.py).
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{0,64}$", "maxLength": 64},
    OpenApiParameter.HEADER,
    description=(
        "Up to 64 characters [A-Za-z0-9_.:-] (empty: no key). A retry with the same key returns the first answer."
    ),
)


class StrictInputSerializerExtension(OpenApiSerializerExtension):
    """Input serializers that refuse undeclared fields (core/api_errors.py) say so in the
    schema with `additionalProperties: false`, so clients and fuzzers know that an extra
    field such as `price` or `status` is an error, not silently ignored. Nested lists
    (`many=True`) get the minItems/maxItems their serializer enforces, which
    drf-spectacular leaves out."""

    target_class = "core.api_errors.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for name, field in force_instance(self.target).fields.items():
            prop = schema.get("properties", {}).get(name)
            if prop is None or not isinstance(field, serializers.ListSerializer):
                continue
            if field.min_length is not None or not field.allow_empty:
                prop["minItems"] = max(field.min_length or 0, 0 if field.allow_empty else 1)
            if field.max_length is not None:
                prop["maxItems"] = field.max_length
        return schema

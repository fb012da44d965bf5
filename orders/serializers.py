from django.conf import settings
from rest_framework import serializers

from core.api_errors import StrictInputSerializer
from orders.models import Order, OrderItem


class OrderItemOutputSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = OrderItem
        fields = ("product", "product_name", "quantity", "unit_price")
        read_only_fields = fields


class OrderOutputSerializer(serializers.ModelSerializer):
    items = OrderItemOutputSerializer(many=True, read_only=True)
    # Declared so that the OpenAPI schema says boolean (model properties have no type hint).
    can_pay = serializers.BooleanField(read_only=True)
    can_cancel = serializers.BooleanField(read_only=True)

    class Meta:
        model = Order
        fields = (
            "number",
            "status",
            "source",
            "total",
            "items",
            "created_at",
            "expires_at",
            "paid_at",
            "closed_at",
            "can_pay",
            "can_cancel",
        )
        read_only_fields = fields


class PendingOrderOutputSerializer(serializers.Serializer):
    """A flash-sale order accepted but not written yet, or refused when the writer came to it
    (orders/pending.py): the fields of an order, with no row behind them yet."""

    number = serializers.CharField()
    status = serializers.ChoiceField(choices=[("confirming", "Confirming"), ("refused", "Refused")])
    source = serializers.ChoiceField(choices=[("seckill", "Flash sale")])
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    items = OrderItemOutputSerializer(many=True)
    created_at = serializers.DateTimeField(allow_null=True, help_text="null: not written yet.")
    expires_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    can_pay = serializers.BooleanField()
    can_cancel = serializers.BooleanField()
    code = serializers.CharField(required=False, help_text="refused: sold_out, limit_reached or duplicate.")
    detail = serializers.CharField(required=False, help_text="refused: why, in words.")


class OrderLineInputSerializer(StrictInputSerializer):
    product = serializers.SlugField(max_length=200, help_text="Product slug.")
    quantity = serializers.IntegerField(min_value=1, max_value=settings.CART_MAX_QUANTITY)


class OrderCreateInputSerializer(StrictInputSerializer):
    """The only fields a client may send. Price, status, user and version are the shop's."""

    items = OrderLineInputSerializer(many=True, allow_empty=False, max_length=50)


_MONEY = serializers.DecimalField(max_digits=12, decimal_places=2)
_TIME = serializers.DateTimeField()


def order_payload(order, *, items=None):
    """OrderOutputSerializer(order).data, without building a serializer for every answer.

    `items` are the order's items when the caller has them at hand (an order just
    written), so the answer needs no query; otherwise they are read from the order.

    The flash-sale purchase answers with this on its hot path, where DRF's per-call field
    set-up cost a tenth of the request; orders/tests/test_serializers.py holds the two
    outputs equal, so the schema of the answer is still OrderOutputSerializer's.
    """
    return {
        "number": order.number,
        "status": order.status,
        "source": order.source,
        "total": _MONEY.to_representation(order.total),
        "items": [
            {
                "product": item.product.slug,
                "product_name": item.product.name,
                "quantity": item.quantity,
                "unit_price": _MONEY.to_representation(item.unit_price),
            }
            for item in (order.items.all() if items is None else items)
        ],
        "created_at": _TIME.to_representation(order.created_at),
        "expires_at": _TIME.to_representation(order.expires_at),
        "paid_at": _TIME.to_representation(order.paid_at),
        "closed_at": _TIME.to_representation(order.closed_at),
        "can_pay": order.can_pay,
        "can_cancel": order.can_cancel,
    }


def pending_payload(pending):
    """A PendingOrder (orders/pending.py) in the shape of order_payload: the same fields, with
    status "confirming" or "refused" (plus `code` and `detail` saying why)."""
    body = {
        "number": pending.number,
        "status": pending.status,
        "source": "seckill",
        "total": _MONEY.to_representation(pending.total),
        "items": [
            {
                "product": pending.product.slug,
                "product_name": pending.product.name,
                "quantity": pending.quantity,
                "unit_price": _MONEY.to_representation(pending.unit_price),
            }
        ],
        "created_at": None,
        "expires_at": _TIME.to_representation(pending.expires_at) if pending.expires_at else None,
        "paid_at": None,
        "closed_at": None,
        "can_pay": False,
        "can_cancel": False,
    }
    if not pending.is_confirming:
        body.update(code=pending.code, detail=pending.detail)
    return body

from django.conf import settings
from rest_framework import serializers

from orders.models import Order, OrderItem
from shop.api_errors import StrictInputSerializer


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


class OrderLineInputSerializer(StrictInputSerializer):
    product = serializers.SlugField(max_length=200, help_text="Product slug.")
    quantity = serializers.IntegerField(min_value=1, max_value=settings.CART_MAX_QUANTITY)


class OrderCreateInputSerializer(StrictInputSerializer):
    """The only fields a client may send. Price, status, user and version are the shop's."""

    items = OrderLineInputSerializer(many=True, allow_empty=False, max_length=50)

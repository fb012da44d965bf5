from rest_framework import serializers

from core.api_errors import StrictInputSerializer

MAX_QUANTITY = 100


class SaleOutputSerializer(serializers.Serializer):
    """The sale as the API shows it: {id, title, product, price, stock_total, stock_remaining, per_user_limit,
    starts_at, ends_at, status, server_time}; a few more fields for the page."""

    id = serializers.IntegerField(source="activity.pk")
    title = serializers.CharField(source="activity.title")
    product = serializers.SlugField(source="activity.product.slug")
    product_name = serializers.CharField(source="activity.product.name")
    regular_price = serializers.DecimalField(source="activity.product.price", max_digits=10, decimal_places=2)
    price = serializers.DecimalField(source="activity.price", max_digits=10, decimal_places=2)
    stock_total = serializers.IntegerField(source="activity.stock_total")
    stock_remaining = serializers.IntegerField(source="remaining")
    per_user_limit = serializers.IntegerField(source="activity.per_user_limit")
    starts_at = serializers.DateTimeField(source="activity.starts_at")
    ends_at = serializers.DateTimeField(source="activity.ends_at")
    payment_minutes = serializers.IntegerField(source="activity.payment_minutes")
    status = serializers.ChoiceField(choices=["upcoming", "live", "sold_out", "ended"])
    server_time = serializers.DateTimeField()


class PurchaseInputSerializer(StrictInputSerializer):
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

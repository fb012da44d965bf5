from rest_framework import serializers

from shop.models import Product


class ProductOutputSerializer(serializers.ModelSerializer):
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = ("slug", "name", "description", "price", "stock", "in_stock")
        read_only_fields = fields

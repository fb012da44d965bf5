from rest_framework import serializers

from shop.models import Product


class ProductOutputSerializer(serializers.ModelSerializer):
    in_stock = serializers.BooleanField(read_only=True)
    image = serializers.CharField(
        source="image_url", read_only=True, allow_null=True, help_text="Path of the 640 px image, or null."
    )

    class Meta:
        model = Product
        fields = ("slug", "name", "description", "price", "stock", "in_stock", "image")
        read_only_fields = fields

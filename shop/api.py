from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny

from core.openapi import PAGE_PARAMETER, ErrorSerializer
from shop import selectors
from shop.serializers import ProductOutputSerializer


@extend_schema(
    tags=["catalogue"],
    parameters=[PAGE_PARAMETER],
    responses={200: ProductOutputSerializer(many=True), 404: ErrorSerializer},
)
class ProductListApi(generics.ListAPIView):
    permission_classes = (AllowAny,)
    serializer_class = ProductOutputSerializer

    def get_queryset(self):
        return selectors.product_list_on_sale()


@extend_schema(tags=["catalogue"], responses={200: ProductOutputSerializer, 404: ErrorSerializer})
class ProductDetailApi(generics.RetrieveAPIView):
    permission_classes = (AllowAny,)
    serializer_class = ProductOutputSerializer

    def get_object(self):
        return selectors.product_get_on_sale(slug=self.kwargs["slug"])

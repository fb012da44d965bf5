from drf_spectacular.utils import extend_schema
from rest_framework import filters, generics
from rest_framework.permissions import AllowAny

from core.errors import InvalidInput
from core.openapi import PAGE_PARAMETER, ErrorSerializer
from shop import selectors
from shop.serializers import ProductOutputSerializer


class ProductSearchFilter(filters.SearchFilter):
    """`?search=words`: products whose name or description contains every word (DRF's
    SearchFilter, bound LIKE parameters). A search longer than the page's allows is a
    400 with a clear message, not a silently cut query."""

    search_description = (
        f"Words that must all appear in the name or description (at most {selectors.SEARCH_MAX_LENGTH} characters)."
    )

    def get_search_terms(self, request):
        raw = request.query_params.get(self.search_param, "")
        if len(raw) > selectors.SEARCH_MAX_LENGTH:
            raise InvalidInput(f"A search is at most {selectors.SEARCH_MAX_LENGTH} characters.", field="search")
        return super().get_search_terms(request)


@extend_schema(
    tags=["catalogue"],
    parameters=[PAGE_PARAMETER],
    responses={200: ProductOutputSerializer(many=True), 400: ErrorSerializer, 404: ErrorSerializer},
)
class ProductListApi(generics.ListAPIView):
    permission_classes = (AllowAny,)
    serializer_class = ProductOutputSerializer
    filter_backends = (ProductSearchFilter,)
    search_fields = ("name", "description")

    def get_queryset(self):
        return selectors.product_list_on_sale()


@extend_schema(tags=["catalogue"], responses={200: ProductOutputSerializer, 404: ErrorSerializer})
class ProductDetailApi(generics.RetrieveAPIView):
    permission_classes = (AllowAny,)
    serializer_class = ProductOutputSerializer

    def get_object(self):
        return selectors.product_get_on_sale(slug=self.kwargs["slug"])

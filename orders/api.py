from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.http import idempotency_key_from
from core.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETER, ErrorSerializer
from orders import selectors, services
from orders.pending import pending_order_get
from orders.serializers import (
    OrderCreateInputSerializer,
    OrderOutputSerializer,
    PendingOrderOutputSerializer,
    pending_payload,
)
from shop.models import Product

PaginatedOrderList = inline_serializer(
    "PaginatedOrderList",
    fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": OrderOutputSerializer(many=True),
    },
)


@extend_schema(tags=["orders"])
class OrderListCreateApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="orders_list",
        parameters=[PAGE_PARAMETER],
        responses={
            200: PaginatedOrderList,
            401: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such page."),
        },
    )
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.order_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        parameters=[IDEMPOTENCY_HEADER],
        request=OrderCreateInputSerializer,
        responses={
            201: OrderOutputSerializer,
            200: OpenApiResponse(OrderOutputSerializer, description="Replay of an earlier request with this key."),
            400: ErrorSerializer,
            401: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
            429: ErrorSerializer,
        },
    )
    def post(self, request):
        key = idempotency_key_from(request)
        data = OrderCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = data.validated_data["items"]
        ids = dict(Product.objects.filter(slug__in=[i["product"] for i in items]).values_list("slug", "pk"))
        unknown = sorted({i["product"] for i in items} - set(ids))
        if unknown:
            raise NotFound(f"No such product: {', '.join(unknown)}.", products=unknown)
        order, created = services.order_create(
            user=request.user,
            lines=[services.CartLine(product_id=ids[i["product"]], quantity=i["quantity"]) for i in items],
            idempotency_key=key,
        )
        return Response(
            OrderOutputSerializer(order).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers={"Location": order.get_absolute_url()},
        )


@extend_schema(tags=["orders"], responses={200: OrderOutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer})
class OrderDetailApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="OrderOrPending",
                    serializers=[OrderOutputSerializer, PendingOrderOutputSerializer],
                    resource_type_field_name=None,
                ),
                description='A flash-sale order still being written has status "confirming"; one the database '
                'refused has status "refused" with `code` and `detail`.',
            ),
            401: ErrorSerializer,
            404: ErrorSerializer,
        }
    )
    def get(self, request, number):
        try:
            order = selectors.order_get_for_user(user=request.user, number=number)
        except NotFound:
            pending = pending_order_get(user=request.user, number=number)
            if pending is None:
                raise
            return Response(pending_payload(pending))
        return Response(OrderOutputSerializer(order).data)


class _OrderActionApi(APIView):
    permission_classes = (IsAuthenticated,)
    service = None

    def post(self, request, number):
        order = selectors.order_get_for_user(user=request.user, number=number)
        return Response(OrderOutputSerializer(type(self).service(order=order)).data)


@extend_schema(
    tags=["orders"],
    request=None,
    responses={
        200: OrderOutputSerializer,
        401: ErrorSerializer,
        402: ErrorSerializer,
        404: ErrorSerializer,
        409: ErrorSerializer,
    },
)
class OrderPayApi(_OrderActionApi):
    service = services.order_pay


@extend_schema(
    tags=["orders"],
    request=None,
    responses={200: OrderOutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
)
class OrderCancelApi(_OrderActionApi):
    service = services.order_cancel

import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import client_ip, idempotency_key_from
from core.openapi import IDEMPOTENCY_HEADER, ErrorSerializer
from orders.serializers import OrderOutputSerializer, PendingOrderOutputSerializer, order_payload, pending_payload
from seckill import cache, purchase_token, selectors, telemetry
from seckill.errors import SoldOut
from seckill.purchase import purchase
from seckill.serializers import PurchaseInputSerializer, SaleOutputSerializer

PurchaseCreated = inline_serializer("PurchaseCreated", fields={"order": OrderOutputSerializer()})
PurchaseAccepted = inline_serializer(
    "PurchaseAccepted",
    fields={
        "order": PendingOrderOutputSerializer(help_text='The order being written: status "confirming".'),
        "status_url": serializers.CharField(help_text="GET it until the status is no longer confirming."),
    },
)
SOLD_OUT_BODY = {"code": SoldOut.code, "detail": SoldOut.default_detail}
PurchaseTokenOutput = inline_serializer(
    "PurchaseToken",
    fields={
        "token": serializers.CharField(help_text="Send it as the Purchase-Token header of the purchase."),
        "expires_in": serializers.IntegerField(help_text="Seconds the token stays valid."),
    },
)
PURCHASE_TOKEN_HEADER = OpenApiParameter(
    "Purchase-Token",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Required when the shop requires purchase tokens: from GET .../token/ shortly before the start.",
)


@extend_schema(tags=["flash sales"])
class SaleListApi(APIView):
    permission_classes = (AllowAny,)

    @extend_schema(responses={200: SaleOutputSerializer(many=True)})
    def get(self, request):
        views = selectors.sale_views(selectors.sale_list_visible())
        return Response(SaleOutputSerializer(views, many=True).data)


@extend_schema(tags=["flash sales"])
class SaleDetailApi(APIView):
    permission_classes = (AllowAny,)

    @extend_schema(responses={200: SaleOutputSerializer, 404: ErrorSerializer})
    def get(self, request, activity_id):
        return Response(SaleOutputSerializer(selectors.sale_get(activity_id=activity_id)).data)


@extend_schema(tags=["flash sales"])
class PurchaseApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        parameters=[IDEMPOTENCY_HEADER, PURCHASE_TOKEN_HEADER],
        request=PurchaseInputSerializer,
        responses={
            201: PurchaseCreated,
            202: OpenApiResponse(
                PurchaseAccepted, description="Accepted; the order is being written (SECKILL_ACK=reserved, or slow)."
            ),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: OpenApiResponse(ErrorSerializer, description="purchase_token_required or purchase_token_invalid"),
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="sold_out, limit_reached, not_started or ended"),
            429: OpenApiResponse(ErrorSerializer, description="rate_limited"),
            503: OpenApiResponse(ErrorSerializer, description="unavailable"),
        },
    )
    def post(self, request, activity_id):
        started = time.perf_counter()
        if cache.is_sold_out(activity_id) and "Idempotency-Key" not in request.headers:
            # Most requests of a sale arrive after the sell-out: answer them before any
            # parsing or check. The flag lives in this process and expires in about a
            # second (seckill/cache.py), so returned units still sell. Counted and logged
            # like every other answer (purchase() does it for the rest). A request with an
            # Idempotency-Key may be the retry of a purchase that went through (its first
            # answer was lost): purchase() answers it with that first answer.
            telemetry.purchase_done(activity_id, request.user.pk, SoldOut.code, started)
            return Response(SOLD_OUT_BODY, status=SoldOut.status)
        data = PurchaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        idempotency_key = idempotency_key_from(request)
        outcome = purchase(
            activity_id=activity_id,
            user=request.user,
            quantity=data.validated_data["quantity"],
            idempotency_key=idempotency_key,
            client_ip=client_ip(request) or "unknown",
            token=request.headers.get("Purchase-Token"),
        )
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        if outcome.order is not None:
            body = {"order": order_payload(outcome.order, items=outcome.items)}
        else:
            body = {"order": pending_payload(outcome.pending), "status_url": f"/api/orders/{outcome.number}/"}
        return Response(body, status=outcome.status, headers=headers)


@extend_schema(tags=["flash sales"])
class PurchaseTokenApi(APIView):
    """A purchase token for this customer and sale (seckill/purchase_token.py), from shortly before the start."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        responses={
            200: PurchaseTokenOutput,
            401: ErrorSerializer,
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="not_started (too early for a token) or ended"),
            503: OpenApiResponse(ErrorSerializer, description="unavailable"),
        },
    )
    def get(self, request, activity_id):
        issued = purchase_token.issue(user_id=request.user.pk, activity_id=activity_id)
        body = {"token": issued.token, "expires_in": issued.max_age}
        return Response(body, headers={"Cache-Control": "no-store"})

"""The strategies the real purchase path is measured against (docs/benchmarks.md).

Every view here is a DRF APIView with the project's default authentication (token
first) and IsAuthenticated, behind the same middleware as
`POST /api/seckill/activities/<id>/purchase/`; the purchasing ones read the body with
the same input serializer and answer with the same order serializer, so the only
difference left is how stock and the per-customer limit are handled.

Each purchasing strategy sells its own product row (bench/rounds.py makes a fresh one
with 1,000 units per round), with a limit of one unit per customer:

- db_pessimistic: SELECT ... FOR UPDATE on the product row, then the order insert.
- db_optimistic: the shop's checkout (orders.services.order_create): version-checked
  conditional UPDATE of the product with retries (take_stock), then the order insert.
- naive: the code of the incident told in docs/architecture.md ("The incident this
  design answers"), the bad example: SETNX + TTL lock, a plain DEL in `finally`,
  read-then-decrement of the stock in Redis, then the order insert. It oversells; that
  is its purpose.

For the two DB strategies the limit of one is the unique (user, idempotency_key)
index of orders: every order of a strategy's product carries the key
"bench-<product id>", so a customer's second order fails in the database.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.db import atomic_with_retry
from core.errors import InsufficientStock
from orders.models import Order, OrderItem
from orders.serializers import OrderOutputSerializer
from orders.services import CartLine, order_create
from seckill.errors import Busy, LimitReached, NotFound, SoldOut
from seckill.serializers import PurchaseInputSerializer
from shop.models import Product

LIMIT = 1  # units per customer in the benchmark scenario


def limit_key(product_id):
    """The idempotency key that makes a second order of the same product a unique-index violation."""
    return f"bench-{product_id}"


def _quantity(request):
    data = PurchaseInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    quantity = data.validated_data["quantity"]
    if quantity > LIMIT:
        raise LimitReached(f"At most {LIMIT} per customer.")
    return quantity


def _created(order):
    return Response({"order": OrderOutputSerializer(order).data}, status=201)


def _expires_at():
    return timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_MINUTES)


class CeilingApi(APIView):
    """The ceiling: authenticated, same middleware and auth as the purchase view, does nothing."""

    permission_classes = (IsAuthenticated,)

    def post(self, request, activity_id):
        return Response({"ok": True, "activity": activity_id, "customer": request.user.pk})


# --- db_pessimistic ---------------------------------------------------------------------


@atomic_with_retry()
def _pessimistic_order(*, product_id, user, quantity):
    product = Product.objects.select_for_update().only("pk", "stock", "price").filter(pk=product_id).first()
    if product is None:
        raise NotFound("No such product.")
    if product.stock < quantity:
        raise SoldOut()
    Product.objects.filter(pk=product_id).update(stock=F("stock") - quantity, version=F("version") + 1)
    order = Order.objects.create(
        user=user, total=product.price * quantity, idempotency_key=limit_key(product_id), expires_at=_expires_at()
    )
    OrderItem.objects.create(order=order, product_id=product_id, quantity=quantity, unit_price=product.price)
    return order


class PessimisticPurchaseApi(APIView):
    permission_classes = (IsAuthenticated,)

    def post(self, request, product_id):
        quantity = _quantity(request)
        try:
            order = _pessimistic_order(product_id=product_id, user=request.user, quantity=quantity)
        except IntegrityError as exc:  # the unique (user, key) index: a second order of this customer
            raise LimitReached() from exc
        return _created(order)


# --- db_optimistic ----------------------------------------------------------------------


class OptimisticPurchaseApi(APIView):
    permission_classes = (IsAuthenticated,)

    def post(self, request, product_id):
        quantity = _quantity(request)
        try:
            order, created = order_create(
                user=request.user,
                lines=[CartLine(product_id=product_id, quantity=quantity)],
                idempotency_key=limit_key(product_id),
            )
        except InsufficientStock as exc:
            raise SoldOut() from exc
        except IntegrityError as exc:
            raise LimitReached() from exc
        if not created:
            raise LimitReached()
        return _created(order)


# --- naive: the incident's code (docs/architecture.md), kept only here as the bad example ----


def naive_keys(product_id):
    """The incident's `"key:" + seckillId` lock and its `key + ":info"` hash with a `stock` field."""
    key = f"bench:naive:{product_id}"
    return key, f"{key}:info"


class NaivePurchaseApi(APIView):
    """DO NOT COPY. A line-by-line port of the incident's seckillHandle() (docs/architecture.md):

        try {
            lockFlag = setIfAbsent(key, "val", 10, SECONDS);      // SETNX + TTL, same value for all
            if (lockFlag) {
                // user validation, activity validation
                stock = opsForHash().get(key + ":info", "stock");  // read ...
                if (stock <= 0) { sold out } else {
                    opsForHash().increment(key + ":info", "stock", -1);  // ... then decrement
                    // generate order
                }
            }
        } finally {
            delete(key);                                           // plain DEL, even if not ours
        }

    (The incident's original `delete("key")` deletes a literal "key"; its analysis, which
    this follows, is that the holder's DEL removes whoever's lock is there.)
    A request that does not get the lock answers 429 busy; the `finally` still deletes the
    lock, so the next request gets in while the holder is still working, and two
    holders reading the last unit both decrement and both write an order.
    """

    permission_classes = (IsAuthenticated,)

    def post(self, request, product_id):
        quantity = _quantity(request)
        redis = get_redis_connection("default")
        lock_key, info_key = naive_keys(product_id)
        try:
            if not redis.set(lock_key, "val", nx=True, ex=10):
                raise Busy("Somebody else is buying; try again.")
            # user validation, activity validation
            product = Product.objects.only("pk", "price", "is_active").filter(pk=product_id).first()
            if product is None or not product.is_active:
                raise NotFound("No such product.")
            stock = redis.hget(info_key, "stock")
            if stock is None or int(stock) <= 0:
                raise SoldOut()
            redis.hincrby(info_key, "stock", -quantity)
            with transaction.atomic():
                order = Order.objects.create(
                    user=request.user, total=product.price * quantity, expires_at=_expires_at()
                )
                OrderItem.objects.create(
                    order=order, product_id=product_id, quantity=quantity, unit_price=product.price
                )
        finally:
            redis.delete(lock_key)
        return _created(order)

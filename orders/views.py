"""Cart, checkout and order pages. Each POST reports its outcome with a message."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import NotFound, ShopError
from core.http import clean_idempotency_key
from core.pages import post_only
from orders import selectors, services
from orders.cart import SessionCart
from orders.pending import pending_order_get
from shop.models import Product


def _quantity(request, default=1):
    try:
        return int(request.POST.get("quantity", default))
    except (TypeError, ValueError):
        return None


@require_GET
def cart_detail(request):
    cart = SessionCart(request.session)
    rows = cart.rows()
    return render(request, "orders/cart.html", {"rows": rows, "total": cart.total(rows)})


def _product_page(request, product_id):
    product = Product.objects.filter(pk=product_id, is_active=True).first()
    return product.get_absolute_url() if product else reverse("shop:product-list")


@post_only(_product_page)
def cart_add(request, product_id):
    product = get_object_or_404(Product, pk=product_id, is_active=True)
    quantity = _quantity(request)
    try:
        SessionCart(request.session).add(product, quantity)
    except ShopError as exc:
        messages.error(request, exc.detail)
        return redirect(product)
    messages.success(request, f"Added {quantity} x {product.name} to your cart.")
    return redirect("orders:cart")


@post_only(lambda request, product_id: reverse("orders:cart"))
def cart_update(request, product_id):
    product = get_object_or_404(Product, pk=product_id)
    quantity = _quantity(request)
    try:
        SessionCart(request.session).update(product, quantity)
    except ShopError as exc:
        messages.error(request, exc.detail)
        return redirect("orders:cart")
    messages.success(request, "Cart updated." if quantity else "Removed from your cart.")
    return redirect("orders:cart")


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request):
    cart = SessionCart(request.session)
    if not len(cart):
        messages.info(request, "Your cart is empty.")
        return redirect("orders:cart")
    if request.method == "POST":
        try:
            order, created = services.order_create(
                user=request.user,
                lines=cart.lines(),
                idempotency_key=clean_idempotency_key(request.POST.get("idempotency_key")),
            )
        except ShopError as exc:
            messages.error(request, exc.detail)
            return redirect("orders:cart")
        cart.clear()
        if created:
            messages.success(
                request, f"Order {order.number} placed. Please pay within {settings.ORDER_PAYMENT_MINUTES} minutes."
            )
        else:
            messages.info(request, f"Order {order.number} was already placed.")
        return redirect(order)
    rows = cart.rows()
    context = {
        "rows": rows,
        "total": cart.total(rows),
        "idempotency_key": uuid.uuid4().hex,
        "payment_minutes": settings.ORDER_PAYMENT_MINUTES,
    }
    return render(request, "orders/checkout.html", context)


@login_required
@require_GET
def order_list(request):
    return render(request, "orders/order_list.html", {"orders": selectors.order_list_for_user(user=request.user)})


def _own_order(request, number):
    try:
        return selectors.order_get_for_user(user=request.user, number=number)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


@login_required
@require_GET
def order_detail(request, number):
    try:
        order = selectors.order_get_for_user(user=request.user, number=number)
    except NotFound as exc:
        pending = pending_order_get(user=request.user, number=number)  # a flash-sale order on its way
        if pending is None:
            raise Http404(exc.detail) from exc
        return render(request, "orders/order_pending.html", {"pending": pending})
    return render(request, "orders/order_detail.html", {"order": order})


def _order_action(request, number, action, success):
    order = _own_order(request, number)
    try:
        action(order=order)
    except ShopError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, success.format(number=order.number))
    return redirect("orders:detail", number=order.number)


def _order_page(request, number):
    return reverse("orders:detail", args=[number])


@post_only(_order_page, note="Nothing was paid. Press the Pay button to pay this order.")
@login_required
def order_pay(request, number):
    return _order_action(request, number, services.order_pay, "Payment received for order {number}. Thank you!")


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel(request, number):
    """GET asks to confirm (a cancelled order cannot be brought back); POST cancels."""
    if request.method == "GET":
        order = _own_order(request, number)
        if not order.can_cancel:
            messages.info(
                request, f"Order {order.number} is {order.get_status_display().lower()}; it cannot be cancelled."
            )
            return redirect(order)
        return render(request, "orders/order_cancel_confirm.html", {"order": order})
    return _order_action(request, number, services.order_cancel, "Order {number} cancelled; nothing was charged.")

"""Sale pages: the home page with live and upcoming sales, the flash-sales page, a page per sale, the buy form."""

import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.errors import NotFound, ShopError
from core.http import clean_idempotency_key, client_ip
from core.pages import post_only
from seckill import purchase_token, selectors
from seckill.conf import conf
from seckill.purchase import purchase
from shop.selectors import product_list_on_sale


@require_GET
def home(request):
    sales = [v for v in selectors.sale_views(selectors.sale_list_visible()) if v.status != "ended"]
    return render(request, "seckill/home.html", {"sales": sales, "products": product_list_on_sale()[:8]})


@require_GET
def sale_list(request):
    return render(request, "seckill/sale_list.html", {"groups": selectors.sale_groups()})


def _sale_or_404(activity_id):
    try:
        return selectors.sale_get(activity_id=activity_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


@require_GET
def sale_detail(request, activity_id):
    sale = _sale_or_404(activity_id)
    context = {
        "sale": sale,
        "idempotency_key": uuid.uuid4().hex,
        "gate": _buy_form_gate(request, activity_id),
        "holding": selectors.customer_holding(sale.activity, user=request.user),
    }
    return render(request, "seckill/sale_detail.html", context)


@dataclass(frozen=True)
class BuyFormGate:
    """What the buy form needs for the purchase token: whether the shop requires one, the
    token itself when the sale is close enough to its start (else the page's script asks
    for it when the countdown gets there), and the timings that script works with."""

    required: bool = False
    value: str = ""
    lead_ms: int = 0
    max_age_ms: int = 0


def _buy_form_gate(request, activity_id):
    if not purchase_token.is_required() or not request.user.is_authenticated:
        return BuyFormGate()
    try:
        value = purchase_token.issue(user_id=request.user.pk, activity_id=activity_id).token
    except ShopError:  # too early, ended or Redis away: no token yet, the script retries
        value = ""
    return BuyFormGate(
        required=True,
        value=value,
        lead_ms=conf().purchase_token_lead_seconds * 1000,
        max_age_ms=conf().purchase_token_max_age_seconds * 1000,
    )


def _sale_page(request, activity_id):
    return reverse("seckill:detail", args=[activity_id])


@post_only(_sale_page, note="Nothing was bought yet. Press “Buy now” on this page to buy.")
def sale_buy(request, activity_id):
    if not request.user.is_authenticated:  # the session ended while the sale page was open
        messages.info(request, "Your session has ended. Log in, then press “Buy now” again: nothing was bought yet.")
        return redirect_to_login(_sale_page(request, activity_id))
    _sale_or_404(activity_id)
    try:
        outcome = purchase(
            activity_id=activity_id,
            user=request.user,
            quantity=1,
            idempotency_key=clean_idempotency_key(request.POST.get("idempotency_key")),
            client_ip=client_ip(request) or "unknown",
            token=request.POST.get("purchase_token"),
        )
    except ShopError as exc:
        level = messages.WARNING if exc.status in (409, 429) else messages.ERROR
        messages.add_message(request, level, exc.detail, extra_tags=f"result-{exc.code}")
        return redirect("seckill:detail", activity_id=activity_id)
    if outcome.order is not None:
        messages.success(
            request,
            f"You got it! Order {outcome.order.number} is reserved for you: pay within the payment window.",
            extra_tags="result-ok",
        )
        return redirect(outcome.order)
    messages.info(
        request,
        f"Your purchase is accepted: order {outcome.number} is being confirmed, this takes a moment.",
        extra_tags="result-confirming",
    )
    return redirect("orders:detail", number=outcome.number)

"""Catalogue pages: the product list and a page per product."""

from django.http import Http404
from django.shortcuts import render

from core.errors import NotFound
from shop import selectors


def product_list(request):
    return render(request, "shop/product_list.html", {"products": selectors.product_list_on_sale()})


def product_detail(request, slug):
    try:
        product = selectors.product_get_on_sale(slug=slug)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return render(request, "shop/product_detail.html", {"product": product})

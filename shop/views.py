"""Catalogue pages: the product list (with search and pages) and a page per product."""

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.errors import NotFound
from shop import selectors

PRODUCTS_PER_PAGE = 12


class SearchForm(forms.Form):
    q = forms.CharField(max_length=selectors.SEARCH_MAX_LENGTH, required=False, strip=True)


@require_GET
def product_list(request):
    """A refused search (too long) says so and lists nothing, rather than everything."""
    form = SearchForm(request.GET)
    query, error = "", ""
    if form.is_valid():
        query = form.cleaned_data["q"]
        products = selectors.product_search(query)
    else:
        error = f"A search is at most {selectors.SEARCH_MAX_LENGTH} characters."
        products = selectors.product_list_on_sale().none()
    page = Paginator(products, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "products": page.object_list,
        "page": page,
        "search_query": request.GET.get("q", "")[: selectors.SEARCH_MAX_LENGTH],
        "query": query,
        "search_error": error,
    }
    return render(request, "shop/product_list.html", context, status=400 if error else 200)


@require_GET
def product_detail(request, slug):
    try:
        product = selectors.product_get_on_sale(slug=slug)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    context = {"product": product, "max_quantity": max(0, min(product.stock, settings.CART_MAX_QUANTITY))}
    return render(request, "shop/product_detail.html", context)

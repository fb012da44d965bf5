from django.db.models import Q

from core.errors import NotFound
from shop.models import Product

SEARCH_MAX_LENGTH = 100


def product_list_on_sale():
    return Product.objects.filter(is_active=True)


def product_search(query):
    """Products on sale whose name or description contains every word of `query`.

    Each word is matched with icontains (a bound LIKE parameter, so the words are data,
    never SQL); an empty query lists everything on sale.
    """
    products = product_list_on_sale()
    for word in query.split()[:10]:
        products = products.filter(Q(name__icontains=word) | Q(description__icontains=word))
    return products


def product_get_on_sale(*, slug):
    product = product_list_on_sale().filter(slug=slug).first()
    if product is None:
        raise NotFound("No such product.")
    return product

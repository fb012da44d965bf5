from core.errors import NotFound
from shop.models import Product


def product_list_on_sale():
    return Product.objects.filter(is_active=True)


def product_get_on_sale(*, slug):
    product = product_list_on_sale().filter(slug=slug).first()
    if product is None:
        raise NotFound("No such product.")
    return product

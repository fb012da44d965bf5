"""The shopping cart, kept in the session: product id -> quantity, nothing else.

Prices and stock are never stored here; they are read fresh when the cart is shown
and taken for real only by order_create, so a stale cart cannot sell at an old price.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from orders.services import CartLine
from shop.models import Product

SESSION_KEY = "cart"


@dataclass
class CartRow:
    product: Product
    quantity: int

    @property
    def line_total(self):
        return self.product.price * self.quantity

    @property
    def short_of_stock(self):
        return self.quantity > self.product.stock


class SessionCart:
    def __init__(self, session):
        self.session = session
        self.data = {str(k): int(v) for k, v in session.get(SESSION_KEY, {}).items()}

    def _save(self):
        self.session[SESSION_KEY] = self.data
        self.session.modified = True

    def add(self, product_id, quantity=1):
        self.set(product_id, self.data.get(str(product_id), 0) + quantity)

    def set(self, product_id, quantity):
        quantity = max(0, min(int(quantity), settings.CART_MAX_QUANTITY))
        if quantity:
            self.data[str(product_id)] = quantity
        else:
            self.data.pop(str(product_id), None)
        self._save()

    def remove(self, product_id):
        self.set(product_id, 0)

    def clear(self):
        self.data = {}
        self._save()

    def __len__(self):
        return sum(self.data.values())

    def rows(self):
        products = Product.objects.in_bulk([int(k) for k in self.data])
        return [CartRow(products[int(k)], q) for k, q in self.data.items() if int(k) in products]

    def lines(self):
        return [CartLine(product_id=int(k), quantity=q) for k, q in self.data.items()]

    @staticmethod
    def total(rows):
        return sum((row.line_total for row in rows), Decimal("0.00"))

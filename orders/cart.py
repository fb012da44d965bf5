"""The shopping cart, kept in the session: product id -> quantity, nothing else.

Prices and stock are never stored here; they are read fresh when the cart is shown
and taken for real only by order_create, so a stale cart cannot sell at an old price.
The cart refuses more of a product than is in stock right now (or than
CART_MAX_QUANTITY), so the customer hears it when adding rather than at checkout;
stock can still run out after that, and order_create's version-checked take is what
actually guarantees it (orders/services.py).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.errors import InvalidInput
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

    @property
    def max_quantity(self):
        """What the quantity field may be set to: the stock, but never below what is there."""
        return max(self.quantity, max_for(self.product))


def max_for(product):
    """The most of `product` one cart may hold now: its free stock, capped per order."""
    return max(0, min(product.stock, settings.CART_MAX_QUANTITY))


class SessionCart:
    def __init__(self, session):
        self.session = session
        self.data = {str(k): int(v) for k, v in session.get(SESSION_KEY, {}).items()}

    def _save(self):
        self.session[SESSION_KEY] = self.data
        self.session.modified = True

    def quantity_of(self, product_id):
        return self.data.get(str(product_id), 0)

    def room_for(self, product):
        """How many more of `product` may be added."""
        return max(0, max_for(product) - self.quantity_of(product.pk))

    def add(self, product, quantity):
        """Add `quantity` of `product`, or raise InvalidInput and change nothing."""
        room = self.room_for(product)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1 or quantity > room:
            raise InvalidInput(self._refusal(product, room))
        self.set(product.pk, self.quantity_of(product.pk) + quantity)

    def update(self, product, quantity):
        """Set the quantity of `product` (0 removes it), or raise InvalidInput and change nothing.

        Lowering is always allowed, even when the stock has fallen below what the cart holds.
        """
        held = self.quantity_of(product.pk)
        top = max(max_for(product), held)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= top:
            raise InvalidInput(f"Choose a quantity between 0 and {top}.")
        self.set(product.pk, quantity)

    def _refusal(self, product, room):
        held = self.quantity_of(product.pk)
        if product.stock < 1:
            return f"{product.name} is sold out."
        if room < 1:
            return f"Your cart already holds {held} of {product.name}, all you can order now."
        if held:
            return f"You can add at most {room} more of {product.name}: your cart already holds {held}."
        return f"Choose a quantity between 1 and {room}."

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

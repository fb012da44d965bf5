from core.errors import NotFound
from orders.models import Order


def order_list_for_user(*, user):
    return Order.objects.filter(user=user).prefetch_related("items__product")


def order_get_for_user(*, user, number):
    """Another customer's order answers exactly like a missing one: its existence is not leaked."""
    order = order_list_for_user(user=user).filter(number=number).first()
    if order is None:
        raise NotFound("No such order.")
    return order

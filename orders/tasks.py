from celery import shared_task

from orders import services
from orders.models import Order
from shop.errors import InvalidState


@shared_task(ignore_result=True)
def expire_overdue_orders():
    """Beat job: return the stock of unpaid orders whose payment window closed."""
    return services.expire_overdue_orders()


@shared_task(ignore_result=True, acks_late=True)
def expire_order(order_id):
    """Countdown for one order, scheduled at its payment deadline. Paid or already
    expired orders are left alone by the version-checked transition."""
    try:
        services.order_expire(order=Order(pk=order_id))
    except InvalidState:
        return False
    return True

from celery import shared_task

from orders import notifications, services


@shared_task(ignore_result=True)
def expire_overdue_orders():
    """Beat job: return the stock of unpaid orders whose payment window closed."""
    return services.expire_overdue_orders()


# Queued after an order commits; sends at most once per order. Defined in orders/notifications.py.
send_order_confirmation = notifications.send_order_confirmation_task


@shared_task(ignore_result=True)
def queue_missing_confirmations():
    """Beat job: queue the confirmations that never went out; sending twice is harmless (see above)."""
    missing = notifications.orders_missing_confirmation()
    for pk in missing:
        send_order_confirmation.delay(pk)
    return len(missing)

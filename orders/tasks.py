from celery import shared_task

from orders import notifications, services


@shared_task(ignore_result=True)
def expire_overdue_orders():
    """Beat job: return the stock of unpaid orders whose payment window closed."""
    return services.expire_overdue_orders()


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),  # smtplib's errors are OSErrors: a mail server away or refusing
    retry_backoff=30,
    retry_jitter=True,
    max_retries=8,
)
def send_order_confirmation(order_id):
    """Queued after an order commits (orders/notifications.py); sends at most once per order."""
    return notifications.send_order_confirmation(order_id)


@shared_task(ignore_result=True)
def queue_missing_confirmations():
    """Beat job: queue the confirmations that never went out; sending twice is harmless (see above)."""
    missing = notifications.orders_missing_confirmation()
    for pk in missing:
        send_order_confirmation.delay(pk)
    return len(missing)

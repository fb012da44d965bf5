from celery import shared_task

from orders import services


@shared_task(ignore_result=True)
def expire_overdue_orders():
    """Beat job: return the stock of unpaid orders whose payment window closed."""
    return services.expire_overdue_orders()

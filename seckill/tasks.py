"""Celery tasks of the sale. Each takes ids and calls a service; the schedule is in config/beat.py."""

import logging

from celery import shared_task
from django.utils import timezone

from core.redis_errors import REDIS_ERRORS
from seckill import buckets, services, stock
from seckill.models import SeckillActivity

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def warm_due_sales():
    return {str(k): v for k, v in services.warm_due_activities().items()}


def _recent_sales():
    """Published sales that ended less than KEEP_AFTER_END ago: the ones with state in Redis."""
    recent = timezone.now() - stock.KEEP_AFTER_END
    return SeckillActivity.objects.filter(published_at__isnull=False, ends_at__gte=recent).values_list("pk", flat=True)


@shared_task(ignore_result=True)
def expire_due_orders():
    """Per-order countdown: unpaid flash-sale orders expire within seconds of their deadline."""
    expired = 0
    for activity_id in _recent_sales():
        try:
            expired += services.expire_due_orders(activity_id=activity_id)
        except REDIS_ERRORS:
            log.warning("sale %s: Redis unreachable, payment deadlines left for the next run", activity_id)
    return expired


@shared_task(ignore_result=True)
def release_stranded_reservations():
    """Give back reservations that never became orders, on sales that are live or just ended."""
    released = 0
    for activity_id in _recent_sales():
        try:
            released += len(services.release_stranded_reservations(activity_id=activity_id))
        except REDIS_ERRORS:
            log.warning("sale %s: Redis unreachable, stranded reservations left for the next run", activity_id)
    return released


@shared_task(ignore_result=True)
def finish_stock_transfers():
    """Bucketed sales: transfers left between their two steps are finished, exactly once."""
    finished = 0
    for activity_id in _recent_sales().filter(bucket_count__gt=1):
        try:
            finished += buckets.finish_transfers(activity_id)
        except REDIS_ERRORS:
            log.warning("sale %s: Redis unreachable, stock transfers left for the next run", activity_id)
    return finished


@shared_task(ignore_result=True)
def return_unsold_units():
    """Ended, settled sales give their unsold units back to the product, once each."""
    try:
        return {str(k): v for k, v in services.return_unsold_units().items()}
    except REDIS_ERRORS:
        log.warning("Redis unreachable: unsold units of ended sales left for the next run")
        return {}

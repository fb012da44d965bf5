"""Celery tasks of the sale. Each takes ids and calls a service; the schedule is in config/beat.py."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from redis.exceptions import RedisError

from seckill import services, stock
from seckill.models import SeckillActivity

log = logging.getLogger(__name__)


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, RedisError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=12,
)
def fulfil_ticket(ticket_id):
    """Async mode: write the order of an accepted purchase. Safe to run any number of
    times (acks_late redelivers after a crash): the ticket becomes one order at most."""
    ticket = services.ticket_fulfil(ticket_id=ticket_id)
    return ticket.status if ticket else None


@shared_task(ignore_result=True)
def warm_due_sales():
    return {str(k): v for k, v in services.warm_due_activities().items()}


@shared_task(ignore_result=True)
def redrive_stuck_tickets():
    """Pending tickets whose Celery message was lost (Redis restart, broker hiccup) are sent again."""
    ids = list(services.stuck_tickets().values_list("pk", flat=True)[:1000])
    for ticket_id in ids:
        fulfil_ticket.delay(ticket_id)
    return len(ids)


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
        except RedisError:
            log.warning("sale %s: Redis unreachable, payment deadlines left for the next run", activity_id)
    return expired


@shared_task(ignore_result=True)
def release_stranded_reservations():
    """Give back reservations that never became orders, on sales that are live or just ended."""
    released = 0
    for activity_id in _recent_sales():
        try:
            released += len(services.release_stranded_reservations(activity_id=activity_id))
        except RedisError:
            log.warning("sale %s: Redis unreachable, stranded reservations left for the next run", activity_id)
    return released

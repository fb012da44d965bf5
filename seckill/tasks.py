"""Celery tasks of the sale. Each takes ids and calls a service; the schedule is in config/beat.py."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from redis.exceptions import RedisError

from seckill import services
from seckill.models import SeckillActivity
from seckill.reconciliation import runner as reconciliation

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
    recent = timezone.now() - services.stock.KEEP_AFTER_END
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


@shared_task(bind=True, ignore_result=True, max_retries=24)
def reconcile_nightly(self):
    """The nightly full reconciliation, at most once per night: the run claims the night's
    slot, so a second beat scheduler's copy of this task finds it taken and does nothing.
    If a manual run holds the lock, try again in five minutes rather than skip the night."""
    try:
        outcome = reconciliation.reconcile_scheduled(slot=reconciliation.nightly_slot(), triggered_by="beat:nightly")
    except reconciliation.ReconciliationBusy as exc:
        raise self.retry(exc=exc, countdown=300) from exc
    return None if outcome is None else outcome.run.pk


@shared_task(ignore_result=True)
def reconcile_ended_sales():
    """Reconcile each sale once, a few minutes after it ends (runner.AFTER_END_DELAY), so
    staff hear about a problem the same day rather than the next morning."""
    done = []
    for activity_id in reconciliation.sales_due_after_end():
        try:
            outcome = reconciliation.reconcile_scheduled(
                slot=reconciliation.sale_ended_slot(activity_id),
                triggered_by="beat:sale-ended",
                activity_ids=[activity_id],
            )
        except reconciliation.ReconciliationBusy:
            log.info("reconciliation busy; sale %s is tried again at the next beat", activity_id)
            break
        if outcome is not None:
            done.append(outcome.run.pk)
    return done

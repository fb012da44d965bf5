"""Celery tasks of reconciliation; their schedule, with the reason for each, is config/beat.py."""

import logging

from celery import shared_task

from reconciliation import runner as reconciliation

log = logging.getLogger(__name__)


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

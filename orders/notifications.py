"""The order confirmation e-mail: queued after the order commits, sent at most once per order.

- `order_confirmation_on_commit(order_ids)`: call it inside the transaction that writes
  the orders (orders/services.py does for checkout; a flash sale's order transaction
  can do the same). Nothing is queued unless and until that transaction commits, so a
  rolled-back order never gets an e-mail. It is registered `robust`: if the broker is
  down, the error is logged and the committed order stands; the sweep
  (`orders_missing_confirmation`, run by a beat job, config/beat.py) queues it later.
- `send_order_confirmation(order_id)`: run by the Celery task `send_order_confirmation_task`
  (registered as orders.tasks.send_order_confirmation; it is defined here, beside the
  hook that queues it, so the web process has it without importing orders/tasks.py).
  It locks the order's OrderEmail row, sends, and stamps `sent_at` in one transaction:
  two deliveries of the same task serialise on that row and the second sends nothing;
  if sending fails, the stamp rolls back and the task's retry sends again. The one
  window left is a crash after the mail server accepted the e-mail and before the
  commit, which can repeat one e-mail (at least once, never lost).
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from orders.models import Order, OrderEmail

log = logging.getLogger(__name__)

# The sweep looks this far back, and leaves the newest orders to their own task.
SWEEP_WINDOW = timedelta(days=1)
SWEEP_GRACE = timedelta(minutes=2)


def order_confirmation_on_commit(order_ids):
    """Queue one confirmation per order once the caller's transaction commits."""
    ids = [int(pk) for pk in order_ids]
    if not ids:
        return

    def queue_order_confirmations():  # a named function: Django logs a robust hook's failure by its name
        if len(ids) == 1:
            send_order_confirmation_task.delay(ids[0])
        else:  # a batch (the flash sale's order writer): one message, the worker fans it out
            queue_order_confirmations_task.delay(ids)

    transaction.on_commit(queue_order_confirmations, robust=True)


@shared_task(
    name="orders.tasks.send_order_confirmation",
    ignore_result=True,
    autoretry_for=(OSError,),  # smtplib's errors are OSErrors: a mail server away or refusing
    retry_backoff=30,
    retry_jitter=True,
    max_retries=8,
)
def send_order_confirmation_task(order_id):
    return send_order_confirmation(order_id)


@shared_task(name="orders.tasks.queue_order_confirmations", ignore_result=True)
def queue_order_confirmations_task(order_ids):
    """One task per order, from one message per batch: a writer committing 500 orders at once
    publishes once instead of 500 times, and each e-mail still retries on its own."""
    for pk in order_ids:
        send_order_confirmation_task.delay(int(pk))


def send_order_confirmation(order_id):
    """Send the confirmation of one order unless it went out already; True if sent now."""
    order = Order.objects.select_related("user").filter(pk=order_id).first()
    if order is None:
        return False
    row, _ = OrderEmail.objects.get_or_create(order=order, kind=OrderEmail.Kind.CONFIRMATION)
    with transaction.atomic():
        row = OrderEmail.objects.select_for_update().get(pk=row.pk)
        if row.sent_at is not None:
            return False
        recipient = order.user.email
        if recipient:
            subject, body = _render(order)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
        else:
            log.info("order %s: no e-mail address, confirmation skipped", order.number)
        row.recipient = recipient
        row.sent_at = timezone.now()
        row.save(update_fields=["recipient", "sent_at"])
    return bool(recipient)


def _render(order):
    context = {
        "order": order,
        "items": list(order.items.select_related("product")),
        "order_url": settings.SITE_URL + order.get_absolute_url(),
    }
    subject = f"Your Flash Shop order {order.number}"
    return subject, render_to_string("orders/email/order_confirmation.txt", context)


def orders_missing_confirmation(now=None, limit=500):
    """Ids of recent orders whose confirmation was never sent (broker down at commit, lost message)."""
    now = now or timezone.now()
    return list(
        Order.objects.filter(created_at__gte=now - SWEEP_WINDOW, created_at__lte=now - SWEEP_GRACE)
        .exclude(
            pk__in=OrderEmail.objects.filter(kind=OrderEmail.Kind.CONFIRMATION, sent_at__isnull=False).values(
                "order_id"
            )
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )

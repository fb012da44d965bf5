"""Async mode: an accepted purchase (202) becomes its order later, exactly once."""

from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from seckill import cache, stock
from seckill.errors import LimitReached, SoldOut
from seckill.models import SeckillTicket
from seckill.services.order_write import DuplicateReservation, PoolEmpty, seckill_order_create


def ticket_create(*, sale, user_id, quantity, reservation_id, fencing_token, enqueue, idempotency_key=None):
    """Record an accepted purchase before answering 202, then `enqueue(ticket_id)` after the commit.

    The ticket row is the durable promise: if the Celery message is lost, the sweep
    finds the pending ticket and sends it again. The caller passes the task's `delay`,
    so this module imports no task and the tasks module can import the services.
    """
    with transaction.atomic():
        ticket = SeckillTicket.objects.create(
            id=reservation_id,
            activity_id=sale.id,
            user_id=user_id,
            quantity=quantity,
            fencing_token=fencing_token,
            idempotency_key=idempotency_key or "",
        )
        transaction.on_commit(partial(enqueue, ticket.pk), robust=True)
    return ticket


def ticket_fulfil(*, ticket_id):
    """Turn a pending ticket into its order, exactly once however often it is called.

    The ticket's status moves to done in the same transaction as the order, and the
    reservation id is unique on the order link, so a redelivered or duplicated task
    finds the order already there. A refusal by the DB (sold out, over the limit)
    fails the ticket and gives the reservation back.
    """
    ticket = SeckillTicket.objects.filter(pk=ticket_id).first()
    if ticket is None or ticket.status != SeckillTicket.Status.PENDING:
        return ticket
    sale = cache.sale_info(ticket.activity_id)
    try:
        seckill_order_create(
            sale=sale,
            user_id=ticket.user_id,
            quantity=ticket.quantity,
            reservation_id=ticket.pk,
            fencing_token=0,  # the customer lock was released at the 202; see _QUOTA_UPSERT
            idempotency_key=ticket.idempotency_key or None,
            ticket_id=ticket.pk,
        )
    except DuplicateReservation:
        pass
    except (SoldOut, LimitReached) as exc:
        failed = SeckillTicket.objects.filter(pk=ticket.pk, status=SeckillTicket.Status.PENDING).update(
            status=SeckillTicket.Status.FAILED, error_code=exc.code
        )
        if failed:
            stock.give_back(
                activity_id=ticket.activity_id,
                reservation_id=ticket.pk,
                back_on_sale=not isinstance(exc, PoolEmpty),
            )
    ticket.refresh_from_db()
    return ticket


def stuck_tickets(older_than_s=30):
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    return SeckillTicket.objects.filter(status=SeckillTicket.Status.PENDING, created_at__lte=cutoff)

"""Reservations in Redis that never became an order, and giving them back (I2).

A reservation is made by purchase.lua and settled by the order transaction; a worker
that dies in between leaves it open. After a grace period far longer than any request
the sweep gives its units back, each by one atomic script (release.lua), so two sweeps
running at once cannot return a unit twice.
"""

import logging

from seckill import stock
from seckill.conf import conf
from seckill.models import SeckillOrder, SeckillTicket

log = logging.getLogger(__name__)


def open_reservations(activity_id):
    """Reservations in Redis that have not become an order (in flight, pending ticket or stranded)."""
    entries = list(stock.reservations(activity_id))
    ids = [e.reservation_id for e in entries]
    settled = set(SeckillOrder.objects.filter(reservation_id__in=ids).values_list("reservation_id", flat=True))
    return [e for e in entries if e.reservation_id not in settled], settled


def release_stranded_reservations(*, activity_id, older_than_s=None):
    """Give back reservations that never became an order (a worker died between the Lua
    reservation and the DB write). Without this, those units would never sell (I2).

    Only entries older than the grace period are touched: a purchase in flight is never
    older than a request timeout. Pending async tickets are not stranded: their order is
    still coming. Returns the reservation ids given back.
    """
    older_than_s = conf().reservation_grace_seconds if older_than_s is None else older_than_s
    cutoff_ms = stock.server_time_ms() - int(older_than_s * 1000)
    pending, settled = open_reservations(activity_id)
    stock.forget_reservations(activity_id, list(settled))
    old = [e for e in pending if e.reserved_ms <= cutoff_ms]
    waiting = set(
        SeckillTicket.objects.filter(
            pk__in=[e.reservation_id for e in old], status=SeckillTicket.Status.PENDING
        ).values_list("pk", flat=True)
    )
    released = []
    for entry in old:
        if entry.reservation_id not in waiting and stock.give_back(
            activity_id=activity_id, reservation_id=entry.reservation_id
        ):
            released.append(entry.reservation_id)
    if released:
        log.warning("sale %s: gave back %d stranded reservation(s)", activity_id, len(released))
    return released

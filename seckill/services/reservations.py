"""Reservations in Redis that never became an order, and giving them back (I2).

A reservation is made by purchase.lua and settled by the order transaction; a worker
that dies in between leaves it open. After a grace period far longer than any request
the sweep gives its units back, each by one atomic script (release.lua), so two sweeps
running at once cannot return a unit twice.
"""

import logging

from seckill import intents, stock
from seckill.conf import conf
from seckill.models import SeckillOrder

log = logging.getLogger(__name__)


def open_reservations(activity_id):
    """Reservations in Redis that have not become an order (their intent waits for the writer, or stranded)."""
    entries = list(stock.reservations(activity_id))
    ids = [e.reservation_id for e in entries]
    settled = set(SeckillOrder.objects.filter(reservation_id__in=ids).values_list("reservation_id", flat=True))
    return [e for e in entries if e.reservation_id not in settled], settled


def release_stranded_reservations(*, activity_id, older_than_s=None):
    """Give back reservations that will never become an order. Without this, those units
    would never sell (I2).

    purchase.lua writes a reservation and its intent in one step, so a reservation is
    stranded only when its intent is gone without an order: lost with a Redis that kept
    nothing on disk, or settled by a writer that died before giving a refused one back.
    Only entries older than the grace period are touched, and never one whose intent is
    still in the stream, however old: the writer is behind, and its order is coming. When
    too many intents wait to read them all, the sweep leaves the sale for a later run.
    Returns the reservation ids given back.
    """
    older_than_s = conf().reservation_grace_seconds if older_than_s is None else older_than_s
    cutoff_ms = stock.server_time_ms() - int(older_than_s * 1000)
    pending, settled = open_reservations(activity_id)
    stock.forget_reservations(activity_id, list(settled))
    old = [e for e in pending if e.reserved_ms <= cutoff_ms]
    if not old:
        return []
    waiting = intents.waiting_reservations(activity_id)
    if waiting is None:
        log.warning("sale %s: the writers are far behind; stranded reservations left for a later run", activity_id)
        return []
    released = []
    for entry in old:
        if entry.reservation_id not in waiting and stock.give_back(
            activity_id=activity_id, reservation_id=entry.reservation_id
        ):
            released.append(entry.reservation_id)
    if released:
        log.warning("sale %s: gave back %d stranded reservation(s)", activity_id, len(released))
    return released

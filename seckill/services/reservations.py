"""Reservations in Redis that never became an order, and giving them back (I2).

A reservation is made by purchase.lua and settled by the order transaction; a worker
that dies in between leaves it open. After a grace period far longer than any request
the sweep gives its units back, each by one atomic script (release.lua), so two sweeps
running at once cannot return a unit twice.
"""

import logging

from seckill import buckets, intents, stock
from seckill.conf import conf
from seckill.models import SeckillOrder

log = logging.getLogger(__name__)


def open_reservations(activity_id):
    """Reservations in Redis that have not become an order (their intent waits for the writer, or stranded);
    every bucket's of a bucketed sale."""
    entries = [e for space in buckets.spaces(activity_id) for e in stock.reservations(space)]
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
    Returns the reservation ids given back. A bucketed sale is swept bucket by bucket,
    each with its own stream, reservations and give-back (the unit returns to its bucket).
    """
    released = []
    for space in buckets.spaces(activity_id):
        released += _release_stranded(space, older_than_s)
    return released


def _release_stranded(activity_id, older_than_s):
    older_than_s = conf().reservation_grace_seconds if older_than_s is None else older_than_s
    cutoff_ms = stock.server_time_ms() - int(older_than_s * 1000)
    entries = list(stock.reservations(activity_id))
    # The stream is read before the orders, never after: an intent leaves the stream only
    # after the COMMIT of its order, so one that is not in the stream now either has its
    # order committed already (and the read below sees it) or never will. Read the other
    # way round, an order committed between the two reads would look stranded, and its
    # unit would be sold twice.
    waiting = intents.waiting_reservations(activity_id)
    if waiting is None:
        log.warning("sale %s: the writers are far behind; stranded reservations left for a later run", activity_id)
        return []
    ids = [e.reservation_id for e in entries if e.reservation_id not in waiting]
    settled = set(SeckillOrder.objects.filter(reservation_id__in=ids).values_list("reservation_id", flat=True))
    stock.forget_reservations(activity_id, list(settled))
    released = []
    for entry in entries:
        rid = entry.reservation_id
        if entry.reserved_ms > cutoff_ms or rid in waiting or rid in settled:
            continue
        if stock.give_back(activity_id=activity_id, reservation_id=rid):
            released.append(rid)
    if released:
        log.warning("sale %s: gave back %d stranded reservation(s)", activity_id, len(released))
    return released

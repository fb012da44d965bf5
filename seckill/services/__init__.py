"""Flash-sale writes other than the purchase request itself, one module per job.

- lifecycle.py: publish, warm up, end now, re-sync Redis from the database;
- order_write.py: the order transaction of a purchase (rows via orders/rows.py);
- reservations.py: open reservations, and giving back the stranded ones (I2);
- deadlines.py: payment deadlines, and units coming back from dead orders;
- tickets.py: async mode's durable tickets.

The names below are re-exported so callers can write `services.activity_warm(...)`.
"""

from seckill.services.deadlines import expire_due_orders, release_order_units
from seckill.services.lifecycle import (
    activities_due_for_warmup,
    activity_end_now,
    activity_publish,
    activity_resync,
    activity_warm,
    warm_due_activities,
)
from seckill.services.order_write import DuplicateReservation, PoolEmpty, seckill_order_create
from seckill.services.reservations import open_reservations, release_stranded_reservations
from seckill.services.tickets import stuck_tickets, ticket_create, ticket_fulfil

__all__ = [
    "DuplicateReservation",
    "PoolEmpty",
    "activities_due_for_warmup",
    "activity_end_now",
    "activity_publish",
    "activity_resync",
    "activity_warm",
    "expire_due_orders",
    "open_reservations",
    "release_order_units",
    "release_stranded_reservations",
    "seckill_order_create",
    "stuck_tickets",
    "ticket_create",
    "ticket_fulfil",
    "warm_due_activities",
]

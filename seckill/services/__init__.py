"""Flash-sale writes other than the purchase request itself, one module per job.

- lifecycle.py: publish, warm up, end now, re-sync Redis from the database, and give an
  ended sale's unsold units back to the product;
- order_write.py: the order writer's batch transaction (rows via orders/rows.py);
- reservations.py: open reservations, and giving back the stranded ones (I2);
- deadlines.py: payment deadlines, and units coming back from dead orders;
- order_write.py is also the order writer's batch transaction (seckill/writer.py runs it).

The names below are re-exported so callers can write `services.activity_warm(...)`.
"""

from seckill.services.deadlines import expire_due_orders, release_order_units
from seckill.services.lifecycle import (
    activities_due_for_return,
    activities_due_for_warmup,
    activity_end_now,
    activity_publish,
    activity_resync,
    activity_return_unsold,
    activity_warm,
    return_unsold_units,
    warm_due_activities,
)
from seckill.services.order_write import PoolEmpty, intents_write
from seckill.services.reservations import open_reservations, release_stranded_reservations

__all__ = [
    "PoolEmpty",
    "activities_due_for_return",
    "activities_due_for_warmup",
    "activity_end_now",
    "activity_publish",
    "activity_resync",
    "activity_return_unsold",
    "activity_warm",
    "expire_due_orders",
    "intents_write",
    "open_reservations",
    "release_order_units",
    "release_stranded_reservations",
    "return_unsold_units",
    "warm_due_activities",
]

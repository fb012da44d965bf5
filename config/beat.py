"""Every periodic job of the shop, in one place, each with the reason it exists.

Tasks scheduled here must be safe to run twice at once (two beat processes after a
botched deploy): each one either takes a lock or only performs conditional updates.
"""

BEAT_SCHEDULE = {
    # Unpaid orders hold stock; the sweep returns it once the payment window closes.
    # Each order is moved by a version-checked UPDATE, so a double run expires it once.
    "orders-expire-overdue": {
        "task": "orders.tasks.expire_overdue_orders",
        "schedule": 60.0,
    },
    # A sale is published and loaded into Redis a few minutes before it starts, and a
    # live sale that Redis forgot (restart) is reloaded from the DB. Warm-up is
    # idempotent and runs under a per-sale lock.
    "seckill-warm-due-sales": {
        "task": "seckill.tasks.warm_due_sales",
        "schedule": 60.0,
    },
    # Async purchases whose Celery message was lost are sent again; the ticket turns
    # into one order however many times it is sent.
    "seckill-redrive-stuck-tickets": {
        "task": "seckill.tasks.redrive_stuck_tickets",
        "schedule": 30.0,
    },
    # A worker that died between reserving in Redis and writing the order leaves a unit
    # that would never sell (I2); after a grace period the unit goes back on sale.
    # Each reservation is given back by one atomic script, so two runs cannot double it.
    "seckill-release-stranded-reservations": {
        "task": "seckill.tasks.release_stranded_reservations",
        "schedule": 60.0,
    },
}

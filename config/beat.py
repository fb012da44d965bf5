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
}

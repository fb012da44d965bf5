"""Every periodic job of the shop, in one place, each with the reason it exists.

Tasks scheduled here must be safe to run twice at once (two beat processes after a
botched deploy): each one either takes a lock or only performs conditional updates.
"""

import os

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Unpaid orders hold stock; the sweep returns it once the payment window closes.
    # Each order is moved by a version-checked UPDATE, so a double run expires it once.
    "orders-expire-overdue": {
        "task": "orders.tasks.expire_overdue_orders",
        "schedule": 60.0,
    },
    # Order confirmation e-mails are queued when an order commits; one that never went out
    # (broker down at that moment, a lost message) is queued again here. Sending locks the
    # order's e-mail row and stamps it, so a doubled run sends each e-mail once.
    "orders-queue-missing-confirmations": {
        "task": "orders.tasks.queue_missing_confirmations",
        "schedule": 300.0,
    },
    # The per-order countdown of flash-sale orders: purchase.lua files each reservation
    # under its payment deadline, and this job expires the orders whose deadline passed,
    # so a unit held by an unpaid order is back on sale within seconds (the minute sweep
    # above is the backstop). Expiry is version-checked, so two runs expire once.
    "seckill-expire-due-orders": {
        "task": "seckill.tasks.expire_due_orders",
        "schedule": 5.0,
    },
    # A sale is published and loaded into Redis a few minutes before it starts, and a
    # live sale that Redis forgot (restart) is reloaded from the DB. Warm-up is
    # idempotent and runs under a per-sale lock.
    "seckill-warm-due-sales": {
        "task": "seckill.tasks.warm_due_sales",
        "schedule": 60.0,
    },
    # A reservation whose order never came (its intent was lost with an unpersisted
    # Redis, or settled without an order) would never sell (I2); after a grace period the
    # unit goes back on sale. Intents still waiting for the writer are never touched.
    # Each reservation is given back by one atomic script, so two runs cannot double it.
    "seckill-release-stranded-reservations": {
        "task": "seckill.tasks.release_stranded_reservations",
        "schedule": 60.0,
    },
    # A bucketed sale's stock transfer whose mover stopped between its two steps (the
    # units taken from the reserve or a bucket, not yet added to the target) is finished
    # here (seckill/buckets.py); the target applies a transfer id once, so a run racing
    # the mover or another run adds nothing twice.
    "seckill-finish-stock-transfers": {
        "task": "seckill.tasks.finish_stock_transfers",
        "schedule": 10.0,
    },
    # An ended sale's units that were neither sold nor held go back to the product's free
    # stock, once every accepted purchase is written (seckill/services/lifecycle.py). The
    # return is a conditional UPDATE on returned_at IS NULL, so two runs return once.
    "seckill-return-unsold-units": {
        "task": "seckill.tasks.return_unsold_units",
        "schedule": 60.0,
    },
    # Reconciliation (docs/reconciliation.md) finds what the real-time path missed: oversold or
    # over-limit orders, duplicates, stock drift between the DB and Redis, stranded
    # units. Nightly, in the quiet hours, over everything; the run claims the night's
    # slot (unique index), so a second beat scheduler's copy does nothing.
    "seckill-reconcile-nightly": {
        "task": "reconciliation.tasks.reconcile_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
    # Each sale is also reconciled on its own 5 to 60 minutes after it ends, so a problem
    # reaches staff the same day. One run per sale (slot "sale-ended:<id>"); a tick that
    # finds the reconciliation lock taken leaves the sale for the next tick.
    "seckill-reconcile-ended-sales": {
        "task": "reconciliation.tasks.reconcile_ended_sales",
        "schedule": 300.0,
    },
}


def _with_overrides(schedule, spec):
    """BEAT_INTERVAL_OVERRIDES="entry=seconds,...": the chaos suite runs jobs every few seconds.

    An unknown entry name is an error at start-up, not a silently ignored setting.
    """
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, seconds = item.partition("=")
        if name not in schedule:
            raise KeyError(f"BEAT_INTERVAL_OVERRIDES names an unknown beat entry: {name!r}")
        schedule[name] = {**schedule[name], "schedule": float(seconds)}
    return schedule


BEAT_SCHEDULE = _with_overrides(BEAT_SCHEDULE, os.environ.get("BEAT_INTERVAL_OVERRIDES", ""))

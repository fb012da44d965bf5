"""Optimistic locking on a `version` column: the MySQL backend that needs no lock at all.

A write reads the row, decides what to change from what it read, and then writes with
`UPDATE ... SET version = version + 1 WHERE id = %s AND version = %s`. If anybody
committed in between, the UPDATE matches no row and nothing is written; the helper
reads again and decides again, a bounded number of times. The decision is therefore
always made on the row exactly as it is when the write lands, which is what makes a
read-then-decide safe here while the read-then-decrement of the incident in docs/architecture.md was not.

Needs READ COMMITTED (config/settings.py): each retry must see the newest committed row.
"""

import random
import time

from django.conf import settings
from django.db.models import F

from core.errors import ShopError


class VersionConflict(ShopError):
    code = "conflict"
    status = 409
    default_detail = "Somebody else changed this at the same moment; please try again."


def update_with_version(queryset, *, pk, decide, attempts=None, backoff_s=0.002):
    """Apply `decide(row) -> {field: value}` to row `pk` only if nobody changed it meanwhile.

    `decide` may raise a ShopError to refuse the change (insufficient stock, wrong
    state); that refusal is final and not retried. Returns the row with the
    changes applied and its new version (fields set by an expression reload on access).
    Raises VersionConflict after `attempts` lost races; every lost race means another writer committed, so under
    a burst the caller reaches a final answer (done, or refused) well before that.
    """
    attempts = attempts or settings.STOCK_UPDATE_ATTEMPTS
    for attempt in range(attempts):
        row = queryset.get(pk=pk)
        changes = decide(row)
        matched = queryset.filter(pk=pk, version=row.version).update(version=F("version") + 1, **changes)
        if matched:
            row.version += 1
            for field, value in changes.items():
                if hasattr(value, "resolve_expression"):
                    row.__dict__.pop(field, None)  # now deferred: read again from the DB if used
                else:
                    setattr(row, field, value)
            return row
        # Jittered exponential backoff keeps the losers of one race from colliding again.
        time.sleep(random.uniform(0, backoff_s * (2 ** min(attempt, 5))))  # noqa: S311 - jitter, not crypto
    raise VersionConflict(model=queryset.model.__name__, pk=pk)

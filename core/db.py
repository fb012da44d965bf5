"""Database helpers shared by every app that writes stock or orders."""

import functools
import logging
import random
import time

from django.db import OperationalError, transaction

from core.errors import Busy

log = logging.getLogger(__name__)

# MariaDB error numbers for a transaction that lost a lock fight and was rolled back.
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
RETRYABLE_DB_ERRORS = (ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK)


def is_retryable(exc):
    return isinstance(exc, OperationalError) and exc.args and exc.args[0] in RETRYABLE_DB_ERRORS


def atomic_with_retry(attempts=3, backoff_s=0.01):
    """Run the function in its own transaction, again if MariaDB picked it as a deadlock victim.

    A deadlock or lock-wait timeout rolls the whole transaction back, so running it
    again from the start is safe; after `attempts` the caller gets Busy (429), never a 500.
    Must be the outermost transaction: a retry inside an outer one would reuse its locks.
    """

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if transaction.get_connection().in_atomic_block:
                # Inside somebody else's transaction a deadlock has already rolled
                # back their work too; only the outermost caller can retry.
                with transaction.atomic():
                    return func(*args, **kwargs)
            for attempt in range(attempts):
                try:
                    with transaction.atomic():
                        return func(*args, **kwargs)
                except OperationalError as exc:
                    if not is_retryable(exc):
                        raise
                    log.warning("%s: %s, attempt %d of %d", func.__qualname__, exc.args[1], attempt + 1, attempts)
                    time.sleep(random.uniform(0, backoff_s * (2**attempt)))  # noqa: S311 - jitter
            raise Busy()

        return wrapper

    return decorator

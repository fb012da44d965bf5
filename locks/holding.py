"""`held(lock)`: hold a lock for a block, and report a lost or unreleasable lock in one place.

A lease can run out while its holder is still working (docs/locks.md). The block has
then already run, perhaps beside another holder; raising at its end would turn work
the database has guarded (fencing, constraints) into an error for the caller. So
`held` logs the loss, counts nothing twice (the backend already counted it in
lock_metrics) and lets the block's own result stand. A Redis or database error while
releasing is logged the same way: the lease, or the closed connection, frees the lock.
"""

import contextlib
import logging

from locks.errors import LockAcquireTimeout, LockNotOwnedError

log = logging.getLogger("locks")


@contextlib.contextmanager
def held(lock, *, blocking=None, timeout=None, lost_message=None):
    """Acquire `lock` (LockAcquireTimeout if it stays busy), run the block, release.

    `lost_message` says what a lock lost before its release means for this caller; it
    is logged with the lock's name.
    """
    blocking, timeout = lock.wait_policy(blocking, timeout)
    if not lock.acquire(blocking=blocking, timeout=timeout):
        raise LockAcquireTimeout(lock.name, timeout)
    try:
        yield lock
    finally:
        release_quietly(lock, lost_message=lost_message)


def release_quietly(lock, *, lost_message=None):
    """Release `lock`; a lost lock or a backend error is logged, never raised. Returns True if released."""
    try:
        lock.release()
    except LockNotOwnedError:
        log.warning("lock %s was lost before its release: %s", lock.name, lost_message or "another holder may have run")
        return False
    except Exception:
        log.warning("lock %s not released (backend error); it expires on its own", lock.name, exc_info=True)
        return False
    return True

"""The interface every lock backend implements, so callers can swap one for another.

The semantics follow `threading.Lock` where they can: `acquire` returns a bool and
never raises for "busy"; the context manager is the one place that turns "busy" into
an exception, because a `with` block has no other way to say it did not run.
"""

import abc

from locks.errors import LockAcquireTimeout


class Lock(abc.ABC):
    """A named, non-reentrant lock held by one lock object at a time.

    One object belongs to one holder (a thread, a task): share the name between
    holders, not the object.
    """

    backend = "abstract"

    def __init__(self, name, *, blocking=True, blocking_timeout=None, metric_label=None):
        if not name:
            raise ValueError("a lock needs a name")
        self.name = name
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        # Metrics are labelled by the kind of lock, not by its name: per-customer lock
        # names would otherwise create one time series per customer.
        self.metric_label = metric_label or name.split(":", 1)[0]

    @abc.abstractmethod
    def acquire(self, blocking=True, timeout=None):
        """Take the lock. Returns False when it stays busy (at once if not blocking, else after `timeout` s)."""

    @abc.abstractmethod
    def release(self):
        """Give the lock up. Raises LockNotOwnedError if it was lost while held."""

    @abc.abstractmethod
    def extend(self, ttl=None):
        """Make the lease last `ttl` more seconds from now. Raises LockNotOwnedError if it is not ours."""

    @abc.abstractmethod
    def locked(self):
        """Whether anybody (us included) holds the lock right now."""

    @property
    def fencing_token(self):
        """The token issued with the latest acquisition, or None if the backend issues none."""
        return None

    def __enter__(self):
        if not self.acquire(blocking=self.blocking, timeout=self.blocking_timeout):
            raise LockAcquireTimeout(self.name, self.blocking_timeout if self.blocking else 0.0)
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"

"""The interface every lock backend implements, so callers can swap one for another.

The semantics follow `threading.Lock` where they can: `acquire` returns a bool and
never raises for "busy"; the context manager is the one place that turns "busy" into
an exception, because a `with` block has no other way to say it did not run.

Arguments are checked here, once for every backend, before anything reaches a server:
a ttl or timeout that is None where a number is needed, NaN, infinite or out of range
would otherwise fail deep inside a client library (TypeError, OverflowError), or worse,
be read as something else (a lease of 0 ms drops the lock; a negative wait means "try
once" to one server and "forever" to another).
"""

import abc
import logging
import math
import numbers

from locks.errors import LockAcquireTimeout
from locks.metrics import lock_metrics

log = logging.getLogger("locks")

FENCE_RESOURCE_MAX = 255  # FencingToken.resource


def check_seconds(value, what):
    """`value` as a float if it is a positive, finite number of seconds; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a positive, finite number of seconds, not {value!r}")
    return seconds


def check_timeout(value, what="timeout"):
    """A wait bound: None or inf means "no bound", 0 means "try once"; negative or NaN is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number of seconds or None, not {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{what} must be >= 0 seconds (or None to wait without a bound), not {value!r}")
    return None if math.isinf(seconds) else seconds


class Lock(abc.ABC):
    """A named, non-reentrant lock held by one lock object at a time.

    One object belongs to one holder (a thread, a task): share the name between
    holders, not the object. `blocking` and `blocking_timeout` given here are what
    `acquire()` and `with` use when the call does not say otherwise.
    """

    backend = "abstract"
    # Whether `fencing_token` is safe to pass to fence_check (docs/locks.md, "Fencing").
    issues_fencing_tokens = False

    def __init__(self, name, *, blocking=True, blocking_timeout=None, metric_label=None):
        if not name or not isinstance(name, str):
            raise ValueError("a lock needs a name (a non-empty string)")
        self.name = name
        self.blocking = bool(blocking)
        self.blocking_timeout = check_timeout(blocking_timeout, "blocking_timeout")
        # Metrics are labelled by the kind of lock, not by its name: per-customer lock
        # names would otherwise create one time series per customer.
        self.metric_label = metric_label or name.split(":", 1)[0]
        self._labels = {"backend": self.backend, "lock": self.metric_label}

    def wait_policy(self, blocking=None, timeout=None):
        """(blocking, timeout) for one acquire call: the call's own values, else the constructor's.

        timeout is None for "no bound"; a non-blocking call gets 0.
        """
        blocking = self.blocking if blocking is None else bool(blocking)
        timeout = self.blocking_timeout if timeout is None else check_timeout(timeout)
        return blocking, (timeout if blocking else 0.0)

    @property
    def fence_resource(self):
        """The FencingToken.resource to pass to fence_check with this lock's tokens.

        Tokens of different backends are not comparable, so each backend but Redis (whose
        resources predate the others) gets a prefix of its own.
        """
        return f"{self.backend}:{self.name}"

    def _check_fence_resource(self):
        """A fencing backend's lock name must fit FencingToken.resource (255 characters)."""
        room = 255 - len(self.backend) - 1
        if len(self.fence_resource) > 255:
            raise ValueError(f"a {self.backend} lock name goes into FencingToken.resource: at most {room} characters")

    @abc.abstractmethod
    def acquire(self, blocking=None, timeout=None):
        """Take the lock. Returns False when it stays busy (at once if not blocking, else after `timeout` s).

        None for either argument means the value given to the constructor.
        """

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

    def _announce_lost(self, reason):
        """Count, log a WARNING and call on_lost(lock): the one way every backend reports a lost lock.

        Callers make sure it runs once per acquisition. A failing callback is logged,
        never raised into the thread (a watchdog, a session listener) that found the loss.
        """
        lock_metrics.lost.labels(**self._labels).inc()
        log.warning("lock %r lost: %s", self.name, reason)
        on_lost = getattr(self, "on_lost", None)
        if on_lost is not None:
            try:
                on_lost(self)
            except Exception:
                log.exception("on_lost callback of lock %r failed", self.name)

    def __enter__(self):
        blocking, timeout = self.wait_policy()
        if not self.acquire(blocking=blocking, timeout=timeout):
            raise LockAcquireTimeout(self.name, timeout)
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"

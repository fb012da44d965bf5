"""What can go wrong with a lock, as exceptions a caller can tell apart.

They are plain exceptions, not ShopErrors: whether a busy lock means "429, try again"
or "skip this run of the job" is the caller's decision, not the lock's.
"""


class LockError(Exception):
    """Base class of every lock failure."""


class LockAcquireTimeout(LockError):
    """The lock stayed held by somebody else for as long as we were willing to wait."""

    def __init__(self, name, waited_s=None):
        self.name = name
        self.waited_s = waited_s
        suffix = "" if waited_s is None else f" after waiting {waited_s:.3f}s"
        super().__init__(f"could not acquire lock {name!r}{suffix}")


class LockUnavailable(LockError):
    """The lock service did not answer (down, paused, partitioned) within the client's bound.

    The lock's state is unknown to us: a lock we held may be lost (on_lost says so when
    the backend can tell), and one we were acquiring may or may not have been taken.
    The Redis backends raise a subclass that is also a redis ConnectionError, so code
    written against RedisError keeps working.
    """


class LockNotOwnedError(LockError):
    """We tried to release or extend a lock that is no longer ours.

    Seeing this means the lease ran out (or the connection holding a MySQL lock died)
    while the holder was still working: other holders may have run at the same time,
    so anything written under the lock must have been guarded by the database too.
    """


class StaleTokenError(LockError):
    """A write carried a fencing token lower than one the database has already seen."""

    def __init__(self, resource, token, highest):
        self.resource = resource
        self.token = token
        self.highest = highest
        super().__init__(f"fencing token {token} for {resource!r} is stale; {highest} has been seen")


class TokenNotIssuedError(StaleTokenError, LockNotOwnedError):
    """The lock was lost before its fencing token could be issued (a Redis lock's first use of a name).

    Such a holder is stale by definition: a later holder may have written already. It
    is a StaleTokenError, so a guarded write refuses it the same way, and a
    LockNotOwnedError, because the lock is no longer ours.
    """

    def __init__(self, resource):
        self.resource, self.token, self.highest = resource, None, None
        LockError.__init__(self, f"{resource!r} was lost before its fencing token was issued; it is stale")

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

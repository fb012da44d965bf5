"""MySQL/MariaDB named locks (GET_LOCK) on a connection of their own.

A named lock belongs to the connection that took it and dies with it. Taking it on
Django's connection would be wrong twice over: that connection outlives the request
(CONN_MAX_AGE), so a lock the code forgot to release would pass to whatever request
the thread serves next, and the lock's life would be tied to the ORM's reconnects.
Each acquisition therefore opens its own connection and closes it on release, so a
crashed or killed holder frees the lock as soon as the server sees the socket close.
"""

import hashlib
import time

import MySQLdb
from django.db import connections

from locks.base import Lock, check_seconds
from locks.errors import LockError, LockNotOwnedError
from locks.metrics import lock_metrics

MAX_NAME_LENGTH = 64  # the server refuses longer lock names
# MariaDB answers NULL to a negative GET_LOCK timeout instead of waiting forever.
WAIT_FOREVER_S = 365 * 24 * 3600


def open_dedicated_connection(using="default"):
    """A new autocommit MySQLdb connection with Django's parameters for `using`, owned by the caller."""
    connection = MySQLdb.connect(**connections[using].get_connection_params())
    connection.autocommit(True)
    return connection


def connection_database(using="default"):
    return connections[using].settings_dict["NAME"]


def server_lock_name(database, name):
    """The name given to GET_LOCK: scoped to the database, hashed when longer than 64 characters.

    Named locks are global to the server, so two databases on it (a test run beside the
    dev site, say) would otherwise block each other on the same lock name.
    """
    full = f"{database}:{name}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:40]
    return f"{full[: MAX_NAME_LENGTH - 41]}~{digest}"


def _scalar(connection, sql, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


class MySQLNamedLock(Lock):
    """GET_LOCK/RELEASE_LOCK on a dedicated connection; no lease, no fencing token.

    It holds for as long as the connection lives, however long the work takes, and
    frees at once when the holder's process dies. It does not protect writes made
    through Django's connection if the lock's connection is cut mid-work (a network
    blip, wait_timeout): release() reports that as LockNotOwnedError, after the fact.
    """

    backend = "mysql"

    def __init__(
        self,
        name,
        timeout=10.0,
        *,
        using="default",
        metric_label=None,
        blocking=True,
        blocking_timeout=None,
        on_lost=None,
    ):
        # `timeout` is the wait bound of acquire() and `with` (blocking_timeout, if given, wins).
        wait = timeout if blocking_timeout is None else blocking_timeout
        super().__init__(name, blocking=blocking, blocking_timeout=wait, metric_label=metric_label)
        self.using = using
        self.on_lost = on_lost
        self.server_name = server_lock_name(connection_database(using), name)
        self._connection = None
        self._acquired_at = None

    def acquire(self, blocking=None, timeout=None):
        if self._connection is not None:
            raise LockError(f"{self.name!r} is already held by this lock object")
        blocking, timeout = self.wait_policy(blocking, timeout)
        labels = self._labels
        started = time.monotonic()
        connection = open_dedicated_connection(self.using)
        try:
            got = _scalar(connection, "SELECT GET_LOCK(%s, 0)", self.server_name)
            if got == 0:
                lock_metrics.contended.labels(**labels).inc()
                wait_s = 0 if not blocking else (WAIT_FOREVER_S if timeout is None else timeout)
                if wait_s > 0:
                    got = _scalar(connection, "SELECT GET_LOCK(%s, %s)", self.server_name, wait_s)
                    if got == 0:
                        lock_metrics.timed_out.labels(**labels).inc()
        except BaseException:
            connection.close()
            raise
        if got != 1:
            connection.close()
            if got is None:  # NULL: the wait was killed or the server ran out of memory
                raise LockError(f"GET_LOCK({self.server_name!r}) failed")
            return False
        self._connection = connection
        self._acquired_at = time.monotonic()
        lock_metrics.acquired.labels(**labels).inc()
        lock_metrics.wait_seconds.labels(**labels).observe(self._acquired_at - started)
        return True

    def release(self):
        connection, self._connection = self._connection, None
        if connection is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        labels = self._labels
        try:
            released = _scalar(connection, "SELECT RELEASE_LOCK(%s)", self.server_name)
        except MySQLdb.Error as exc:
            # The connection is gone, and the server dropped the lock when it went: at some
            # point we do not know, possibly while the work was still running.
            self._announce_lost(f"the connection holding it broke: {exc}")  # when, we cannot know
            raise LockNotOwnedError(f"the connection holding {self.name!r} broke: {exc}") from exc
        finally:
            connection.close()
            lock_metrics.hold_seconds.labels(**labels).observe(time.monotonic() - self._acquired_at)
        if released != 1:
            self._announce_lost("our connection no longer held it")
            raise LockNotOwnedError(f"{self.name!r} was not held by our connection")

    def owned(self):
        """Whether our connection still holds the lock (one round trip)."""
        if self._connection is None:
            return False
        try:
            return _scalar(self._connection, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", self.server_name) == 1
        except MySQLdb.Error:
            return False

    def extend(self, ttl=None):
        """Named locks have no lease to extend; this only confirms the lock is still ours."""
        if ttl is not None:
            check_seconds(ttl, "ttl")
        if not self.owned():
            raise LockNotOwnedError(f"{self.name!r} is not held by our connection")

    def locked(self):
        if self._connection is not None:
            return _scalar(self._connection, "SELECT IS_FREE_LOCK(%s)", self.server_name) == 0
        with connections[self.using].cursor() as cursor:  # a read-only probe takes no lock
            cursor.execute("SELECT IS_FREE_LOCK(%s)", [self.server_name])
            return cursor.fetchone()[0] == 0

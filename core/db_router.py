"""Catalogue reads from a MariaDB read replica; every other query on the primary.

Installed only when DATABASE_REPLICA_URL is set (config/settings.py); without it the shop
has one database and none of this runs. Built on django-multidb-router: `ReplicaRouter`
picks a replica alias and sends writes to `default`, `PinningRouterMiddleware` sets a
cookie after every request that may have written (any method but GET, HEAD, OPTIONS,
TRACE) and pins that client's requests to the primary while the cookie lasts
(MULTIDB_PINNING_SECONDS), so a customer or a staff member reads their own writes.

Why it is safe. A replica is asynchronous: it may be seconds behind, or gone. So a read
goes to it only when all of these hold, and to `default` otherwise:

- the model is the catalogue's (`REPLICA_APPS`: the `shop` app, i.e. `Product`). Orders,
  flash sales (their pages, the purchase path, the order writer), accounts, sessions,
  tokens and reconciliation always read the primary. Stock or a price shown a few seconds
  old is harmless because nothing is decided on it: checkout's version-checked UPDATE and
  the sale's Redis gate decide, on the primary and in Redis;
- the thread is serving a read-only HTTP request (`replica_reads()`, entered by
  `ReplicaPinningMiddleware`). Celery tasks, the order writer, management commands and
  migrations never opt in, so they keep reading the primary however they reach `Product`;
- the request is not pinned: not after a write (the cookie), not a write itself, not under
  the admin, not from a staff user;
- no transaction is open on `default` (a read inside `transaction.atomic()` belongs with
  the writes of that transaction);
- the replica answered its last check (`ReplicaHealth`): it accepted a connection, answers
  a ping, and (with DATABASE_REPLICA_MAX_LAG_SECONDS > 0) its SQL thread runs no further
  behind than that. A replica that fails is left out for DATABASE_REPLICA_RETRY_SECONDS,
  and the pages read the primary meanwhile instead of answering 503.

Writes always go to `default`, migrations run on `default` only, and relations between
objects read from either database are allowed (they are one database's rows).
"""

import functools
import logging
import threading
import time
from contextlib import contextmanager, suppress

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.urls import reverse
from multidb import PinningReplicaRouter, get_replica
from multidb.middleware import READ_ONLY_METHODS, PinningRouterMiddleware
from multidb.pinning import pin_this_thread, this_thread_is_pinned, unpin_this_thread

log = logging.getLogger(__name__)

# App labels whose models may be read from a replica. Only the catalogue: flash sales are
# read by the purchase path and the order writer, which must see the primary.
REPLICA_APPS = frozenset({"shop"})

_local = threading.local()


@contextmanager
def replica_reads():
    """Let this thread's catalogue reads go to a replica while the block runs.

    Only `ReplicaPinningMiddleware` enters it, for read-only requests; code outside a
    request (Celery, the order writer, commands, migrations) never does, so it reads the
    primary. Each block checks a replica's connection again at its first read (one
    ping). Nesting is allowed: the outer state comes back at the end."""
    before = getattr(_local, "replica_reads", None)
    _local.replica_reads = set()  # the aliases checked in this block
    try:
        yield
    finally:
        _local.replica_reads = before


def replica_reads_allowed():
    return getattr(_local, "replica_reads", None) is not None


class ReplicaHealth:
    """Per-process memory of which replica failed, until when, and when its lag was read.

    The check, at a request's first catalogue read: an open connection must answer a
    ping (bounded by the replica's read_timeout; a connection the server dropped is
    replaced), and a closed one must connect (bounded by its connect_timeout). That is
    the connect and the health check Django would do at that read anyway, done here so
    that a failure sends the read to the primary instead of raising. The lag
    (DATABASE_REPLICA_MAX_LAG_SECONDS) is read at most once per
    DATABASE_REPLICA_CHECK_SECONDS per process. A replica that fails either is left out
    until now + DATABASE_REPLICA_RETRY_SECONDS. Threads share the state; a race between
    two of them only means one check more or fewer, and writes never come here.
    """

    def __init__(self):
        self.down_until = {}
        self.lag_read_at = {}

    def reset(self):
        self.down_until.clear()
        self.lag_read_at.clear()

    def usable(self, alias):
        now = time.monotonic()
        if self.down_until.get(alias, 0.0) > now:
            return False
        connection = connections[alias]
        checked = _local.replica_reads
        try:
            if alias not in checked:
                if connection.connection is not None and not connection.is_usable():
                    with suppress(DatabaseError):
                        connection.close()
                connection.ensure_connection()
                checked.add(alias)
            if now - self.lag_read_at.get(alias, float("-inf")) >= _setting("DATABASE_REPLICA_CHECK_SECONDS", 2.0):
                self._check_lag(connection)
                self.lag_read_at[alias] = now
        except DatabaseError as exc:
            self.mark_down(alias, exc)
            return False
        return True

    def _check_lag(self, connection):
        bound = _setting("DATABASE_REPLICA_MAX_LAG_SECONDS", 0)
        if not bound:
            return
        with connection.cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            row = cursor.fetchone()
            columns = [c[0] for c in cursor.description] if cursor.description else []
        lag = dict(zip(columns, row, strict=True)).get("Seconds_Behind_Master") if row else None
        if lag is None:  # not a replica, or its IO or SQL thread is stopped
            raise DatabaseError("the replica is not replicating (Seconds_Behind_Master is NULL)")
        if lag > bound:
            raise DatabaseError(f"the replica is {lag} s behind, more than {bound} s")

    def mark_down(self, alias, exc):
        retry = _setting("DATABASE_REPLICA_RETRY_SECONDS", 10.0)
        self.down_until[alias] = time.monotonic() + retry
        self.lag_read_at.pop(alias, None)
        log.warning("replica %s left out for %s s, catalogue reads go to the primary: %s", alias, retry, exc)
        with suppress(DatabaseError):
            connections[alias].close()  # the next try opens a new connection


health = ReplicaHealth()


def _setting(name, default):
    return getattr(settings, name, default)


class CatalogueReplicaRouter(PinningReplicaRouter):
    """Reads of the catalogue's models go to a replica under the conditions of the module's
    docstring; everything else is the library's: writes and migrations on `default`,
    relations allowed."""

    def db_for_read(self, model, **hints):
        if (
            model._meta.app_label not in REPLICA_APPS
            or not replica_reads_allowed()
            or this_thread_is_pinned()
            or transaction.get_connection(DEFAULT_DB_ALIAS).in_atomic_block
        ):
            return DEFAULT_DB_ALIAS
        alias = get_replica()
        if alias == DEFAULT_DB_ALIAS or not health.usable(alias):
            return DEFAULT_DB_ALIAS
        return alias


class ReplicaPinningMiddleware(PinningRouterMiddleware):
    """The library's pinning (the cookie after a write, every write request pinned) plus:
    requests under the admin and requests of a staff user are pinned too, so staff always
    see the primary; and a read-only request opens `replica_reads()` for its view.

    Goes after AuthenticationMiddleware (it reads request.user). The thread is unpinned
    and the replica flag dropped when the response leaves, however it leaves, so nothing
    carries over to the next request the thread serves or to code outside requests."""

    def __call__(self, request):
        try:
            if request.method not in READ_ONLY_METHODS:
                return super().__call__(request)
            with replica_reads():
                return super().__call__(request)
        finally:
            unpin_this_thread()

    def process_request(self, request):
        super().process_request(request)
        if not this_thread_is_pinned() and (request.path.startswith(_admin_prefix()) or _is_staff(request)):
            pin_this_thread()


@functools.cache
def _admin_prefix():
    return reverse("admin:index")


def _is_staff(request):
    user = getattr(request, "user", None)  # a session user; an API token is only read by DRF, in the view
    return bool(user is not None and user.is_authenticated and user.is_staff)

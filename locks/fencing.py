"""Fencing tokens: the database check that makes a lost lock harmless to the data.

A lease-based lock can always be lost while its holder still works (a GC pause, an
overloaded dependency, a stopped VM: the incident told in docs/architecture.md). Each acquisition of a Redis
lock therefore carries a token that is higher than every earlier one for that name,
and a write guarded by the lock passes its token to `fence_check` inside the write's
transaction. The FencingToken row remembers the highest token seen and refuses a lower
one, so the holder that lost its lease cannot overwrite the work of the one after it.

Tokens are `epoch << 32 | counter`. The counter lives in Redis; the epoch is reserved
here, in the database, whenever Redis has no counter for the name (first use, or Redis
restarted empty). Reserving an epoch moves the row's high-water mark to the start of
the new epoch, which is above every token issued before (each epoch holds 2**32
tokens), written or not, so a holder from before the restart is refused too.
"""

import MySQLdb
from django.db import transaction

from core.db import RETRYABLE_DB_ERRORS
from locks.errors import LockError, StaleTokenError
from locks.metrics import lock_metrics
from locks.models import FencingToken
from locks.mysql import connection_database, open_dedicated_connection, server_lock_name

EPOCH_BITS = 32
SEED_TURN_WAIT_S = 10


def fence_check(resource, token, *, using="default", metric_label=None, backend="redis"):
    """Record `token` as the newest for `resource`, or raise StaleTokenError if a higher one was seen.

    Must run inside the transaction of the write it guards: the conditional UPDATE
    locks the row until that transaction ends, so a newer holder's check waits for
    this write to commit (or roll back) and the row's high-water mark can never move
    past a write that has not landed. An equal token passes, so one holder may write
    several times under one acquisition. `resource` is the lock's name, also for a
    lock in a fence scope: holders of different locks in one scope run side by side.
    """
    if token is None:
        # RedLock and the MySQL named lock issue none (docs/locks.md, "Fencing"): a write
        # that needs fencing must take a lock that offers it, not pass unchecked.
        raise LockError(f"no fencing token for {resource!r}: this lock backend issues none")
    if not transaction.get_connection(using).in_atomic_block:
        raise transaction.TransactionManagementError("fence_check must run inside the transaction it guards")
    token = int(token)
    rows = FencingToken.objects.using(using)
    if _raise_mark(rows, resource, token):
        return
    row, created = rows.get_or_create(resource=resource, defaults={"highest_token": token})
    if created:
        return
    if row.highest_token <= token and _raise_mark(rows, resource, token):
        return  # the row appeared between our UPDATE and our read
    highest = rows.values_list("highest_token", flat=True).get(resource=resource)
    lock_metrics.stale_token_rejected.labels(backend=backend, lock=metric_label or resource.split(":", 1)[0]).inc()
    raise StaleTokenError(resource, token, highest)


def _raise_mark(rows, resource, token):
    # Django asks MySQL for matched rows (CLIENT.FOUND_ROWS), so an equal token counts as 1.
    return rows.filter(resource=resource, highest_token__lte=token).update(highest_token=token) == 1


def fenced_update(queryset, *, resource, token, backend="redis", **changes):
    """`queryset.update(**changes)` only if `token` is current for `resource`; 0 rows if it is stale.

    Both happen in one transaction, so no newer holder can write between the check and
    the update.
    """
    with transaction.atomic(using=queryset.db):
        try:
            fence_check(resource, token, using=queryset.db, backend=backend)
        except StaleTokenError:
            return 0
        return queryset.update(**changes)


def seed_fence_counter(resource, *, still_missing, seed, using="default"):
    """Reserve the next token epoch for `resource` and `seed(floor)` the Redis counter with it.

    Seeders of one resource take turns on a MySQL named lock held across both steps,
    and each asks `still_missing()` once it has its turn, so a process that queued
    behind another's seed reserves nothing. Without that turn-taking a second process
    could reserve a higher epoch after the first had already handed out tokens from
    its own, and the database would then refuse those tokens from live holders.

    The reservation commits before `seed` runs: if the process dies in between, the
    counter is still missing, the named lock dies with the connection, and the next
    seeder reserves a fresh epoch. Tokens can skip an epoch, never repeat one.
    Returns the floor it seeded, or None if there was nothing to do.
    """
    connection = open_dedicated_connection(using)
    turn = server_lock_name(connection_database(using), f"fence-seed:{resource}")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, %s)", [turn, SEED_TURN_WAIT_S])
            if cursor.fetchone()[0] != 1:
                return None  # the seeder ahead of us is stuck; the caller asks Redis again
        if not still_missing():
            return None
        floor = _reserve_epoch(connection, resource)
        seed(floor)
        return floor
    except MySQLdb.OperationalError as exc:
        if exc.args and exc.args[0] in RETRYABLE_DB_ERRORS:
            return None
        raise
    finally:
        connection.close()  # also ends our turn


def _reserve_epoch(connection, resource):
    table = FencingToken._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        connection.autocommit(False)
        cursor.execute(
            f"INSERT INTO {table} (resource, highest_token) VALUES (%s, 0) "  # noqa: S608 - table name is ours
            "ON DUPLICATE KEY UPDATE resource = resource",
            [resource],
        )
        cursor.execute(
            f"SELECT highest_token FROM {table} WHERE resource = %s FOR UPDATE",  # noqa: S608 - table name is ours
            [resource],
        )
        (highest,) = cursor.fetchone()
        floor = ((highest >> EPOCH_BITS) + 1) << EPOCH_BITS
        cursor.execute(
            f"UPDATE {table} SET highest_token = %s WHERE resource = %s",  # noqa: S608 - table name is ours
            [floor, resource],
        )
    connection.commit()
    connection.autocommit(True)
    return floor

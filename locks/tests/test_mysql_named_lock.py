"""The MySQL named lock: its own connection, hashed long names, clear errors."""

import pytest
from django.db import connection

from locks import LockNotOwnedError, MySQLNamedLock, lock_metrics
from locks.mysql import server_lock_name

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_lock_is_held_by_a_dedicated_connection_not_djangos():
    lock = MySQLNamedLock("import:catalogue")
    assert lock.acquire(blocking=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_USED_LOCK(%s), CONNECTION_ID()", [lock.server_name])
        holder, django_connection = cursor.fetchone()
    assert holder is not None and holder != django_connection
    lock.release()
    assert not lock.locked()


def test_a_second_holder_fails_fast_then_times_out_and_both_are_counted():
    holder, other = MySQLNamedLock("import:stock"), MySQLNamedLock("import:stock")
    contended = lock_metrics.value("contended_total", backend="mysql", lock="import")
    timed_out = lock_metrics.value("timed_out_total", backend="mysql", lock="import")
    assert holder.acquire()
    assert other.locked()
    assert not other.acquire(blocking=False)
    assert not other.acquire(blocking=True, timeout=0.2)
    assert lock_metrics.value("contended_total", backend="mysql", lock="import") == contended + 2
    assert lock_metrics.value("timed_out_total", backend="mysql", lock="import") == timed_out + 1
    holder.extend()  # confirms we still hold it
    holder.release()
    with pytest.raises(LockNotOwnedError):
        holder.release()


def test_a_lock_whose_connection_died_reports_not_owned_on_release():
    lock = MySQLNamedLock("import:prices")
    assert lock.acquire()
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_USED_LOCK(%s)", [lock.server_name])
        (holder_connection,) = cursor.fetchone()
        cursor.execute(f"KILL {int(holder_connection)}")
    with pytest.raises(LockNotOwnedError):
        lock.release()


def test_names_are_scoped_to_the_database_and_long_ones_hashed_to_64_characters():
    short = server_lock_name("flashshop", "job:1")
    assert short == "flashshop:job:1"
    long_name = "seckill:activity:12345:" + "x" * 80
    hashed = server_lock_name("flashshop", long_name)
    assert len(hashed) == 64 and hashed == server_lock_name("flashshop", long_name)
    assert hashed != server_lock_name("flashshop", long_name + "y")
    assert server_lock_name("test_flashshop", "job:1") != short
    lock = MySQLNamedLock(long_name)
    assert lock.acquire(blocking=False)
    lock.release()

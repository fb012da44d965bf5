"""The contract every lock backend keeps, run against each one on real servers (locks/tests/backends.py).

Where a backend cannot keep a clause, the test says so explicitly (MySQL has no lease;
RedLock and MySQL issue no fencing token) instead of skipping it.
"""

import itertools
import threading
import time

import pytest
from django.db import connection, transaction

from locks import LockError, LockNotOwnedError, fence_check, fenced_update
from locks.tests.backends import unique
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 4
ITERATIONS = 25


def strictly_increasing(values):
    return all(a < b for a, b in itertools.pairwise(values))


def test_mutual_exclusion_across_processes_released_together(backend, worker, tmp_path):
    name = unique("contract:count")
    (tmp_path / "counter").write_text("0")
    runs = [worker("count", backend.name, name, str(ITERATIONS), str(tmp_path), env=backend.env) for _ in range(4)]
    for run in runs:
        assert run.read_line(timeout=30) == ["ready"]
    for run in runs:  # the barrier: every process is waiting on its stdin for this line
        run.say("go")
    for run in runs:
        run.finish(timeout=90)

    assert not (tmp_path / "overlaps").exists(), "two holders were inside at the same time"
    assert int((tmp_path / "counter").read_text()) == PROCESSES * ITERATIONS
    tokens = (tmp_path / "tokens").read_text().split()
    assert len(tokens) == PROCESSES * ITERATIONS
    if backend.fencing:
        assert strictly_increasing([int(t) for t in tokens]), "tokens must grow in the order the lock was held"
    else:
        assert set(tokens) == {"None"}


def test_fencing_tokens_grow_and_a_stale_tokens_write_updates_nothing(backend):
    name = unique("contract:fence")
    product = ProductFactory(stock=10)
    rows = Product.objects.filter(pk=product.pk)
    tokens = []
    for _ in range(4):
        lock = backend.make(name)
        assert lock.acquire(blocking=False)
        tokens.append(lock.fencing_token)
        lock.release()
    if not backend.fencing:
        assert tokens == [None] * 4
        with pytest.raises(LockError, match="issues none"), transaction.atomic():
            fence_check(lock.fence_resource, lock.fencing_token)
        return
    assert strictly_increasing(tokens)
    resource = lock.fence_resource
    assert fenced_update(rows, resource=resource, token=tokens[-1], backend=backend.name, stock=7) == 1
    assert fenced_update(rows, resource=resource, token=tokens[-2], backend=backend.name, stock=3) == 0
    product.refresh_from_db()
    assert product.stock == 7


def _make_stale(backend, holder, lock_name):
    """Make the child's lock stale the way that backend loses one: a pause past its lease, or a dead connection."""
    if backend.has_lease:
        holder.pause()  # SIGSTOP: a GC pause or a stopped VM; its keep-alives stop too
        return
    probe = backend.make(lock_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_USED_LOCK(%s)", [probe.server_name])
        (holder_connection,) = cursor.fetchone()
        cursor.execute(f"KILL {int(holder_connection)}")


def test_a_stale_holders_release_raises_and_leaves_the_new_holders_lock(backend, worker):
    name = unique("contract:stale")
    product = ProductFactory(stock=10)
    holder = worker("hold", backend.name, name, "1.0", env=backend.env)
    words = holder.read_line(timeout=30)
    assert words[0] == "acquired"
    _make_stale(backend, holder, name)

    newer = backend.make(name, ttl=10)
    assert newer.acquire(timeout=1.0 + backend.free_after[1] + 2), "the lease of the paused holder never ended"
    if backend.fencing:
        assert newer.fencing_token > int(words[1])
        rows = Product.objects.filter(pk=product.pk)
        assert fenced_update(rows, resource=newer.fence_resource, token=newer.fencing_token, stock=7) == 1

    holder.resume()
    holder.say(f"finish {product.pk}")
    said = holder.finish(timeout=30)
    if backend.fencing:
        assert ["wrote", "0"] in said, "the stale holder's fenced write must update nothing"
    assert ["not-owned"] in said, f"the stale holder's release must raise LockNotOwnedError: {said}"
    assert newer.owned() if hasattr(newer, "owned") else newer.locked()
    product.refresh_from_db()
    assert product.stock == (7 if backend.fencing else 10)
    newer.release()


def test_a_killed_holder_frees_the_lock_at_its_lease_and_not_before(backend, worker):
    name = unique("contract:crash")
    ttl = 1.0
    holder = worker("hold", backend.name, name, str(ttl), env=backend.env)
    assert holder.read_line(timeout=30)[0] == "acquired"
    time.sleep(0.5)  # let a renewal or two happen: the lease must outlive the process by its ttl only
    lock = backend.make(name, ttl=5)
    holder.kill()  # SIGKILL: no release, no finally
    killed_at = time.monotonic()
    low, slack = backend.free_after
    if low:
        assert not lock.acquire(blocking=False), "the lock freed the moment its holder died"
    assert lock.acquire(timeout=ttl + slack + 2)
    waited = time.monotonic() - killed_at
    assert waited >= ttl * low - 0.05, f"freed after {waited:.2f}s, before the lease could have ended"
    assert waited <= ttl + slack, f"freed after {waited:.2f}s, long after the lease ({ttl}s) ended"
    lock.release()


def test_a_waiter_wakes_soon_after_the_release_not_at_the_end_of_the_lease(backend):
    name = unique("contract:wake")
    holder = backend.make(name, ttl=10)
    assert holder.acquire()
    woke = {}
    waiting = threading.Event()

    def wait_for_it():
        lock = backend.make(name, ttl=10)
        waiting.set()
        woke["got"] = lock.acquire(timeout=8)
        woke["at"] = time.monotonic()
        lock.release()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    waiting.wait(5)
    time.sleep(0.5)  # the waiter is blocked by now
    released_at = time.monotonic()
    holder.release()
    thread.join(timeout=10)
    assert woke["got"]
    # The lease is 10 s: a waiter woken within a second was told, not left to the expiry.
    assert woke["at"] - released_at < 1.0


def test_acquire_with_a_timeout_returns_within_it(backend):
    name = unique("contract:timeout")
    holder = backend.make(name, ttl=10)
    assert holder.acquire()
    for timeout in (0.0, 0.3):
        started = time.monotonic()
        assert backend.make(name).acquire(timeout=timeout) is False
        took = time.monotonic() - started
        assert timeout <= took <= timeout + 0.2, f"acquire(timeout={timeout}) took {took:.3f}s"
    started = time.monotonic()
    assert backend.make(name, blocking_timeout=0.3).acquire() is False  # the constructor's bound
    assert time.monotonic() - started <= 0.5
    holder.release()


def test_the_argument_checks_are_the_same_for_every_backend(backend):
    name = unique("contract:args")
    for ttl in (0, -1, float("nan"), float("inf"), None):
        with pytest.raises(ValueError):
            backend.make(name, ttl=ttl)
    lock = backend.make(name)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-1)
    assert lock.acquire()
    with pytest.raises(LockError):
        lock.acquire()  # not reentrant
    for ttl in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            lock.extend(ttl)
    lock.extend()
    lock.release()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    with backend.make(name) as held:
        assert held.locked()
    assert not backend.make(name).locked()

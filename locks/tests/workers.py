"""Lock holders that run in a child process, for the tests that kill one or need several.

Run as `python -m locks.tests.workers COMMAND ARGS...` with the parent test's
environment (see the `worker` fixture); each prints one line when it reaches the point
the test waits for.
"""

import contextlib
import sys
import time

import django


def hold_redis(name, ttl):
    from locks import RedisLock

    lock = RedisLock(name, ttl=float(ttl), auto_renew=True)
    assert lock.acquire(blocking=False)
    print("acquired", lock.fencing_token, flush=True)
    while True:
        time.sleep(1)  # until the test kills us


def hold_mysql(name):
    from locks import MySQLNamedLock

    lock = MySQLNamedLock(name)
    assert lock.acquire(blocking=False)
    print("acquired", flush=True)
    while True:
        time.sleep(1)


def contend_redis(name, ttl, timeout):
    from locks import RedisLock

    lock = RedisLock(name, ttl=float(ttl))
    print("waiting", flush=True)
    started = time.monotonic()
    got = lock.acquire(blocking=True, timeout=float(timeout))
    print("acquired" if got else "timed-out", f"{time.monotonic() - started:.3f}", flush=True)
    if got:
        lock.release()


def fence_run(name, redis_port, count):
    """Take the lock `count` times; under it, pass the fence check and log the token in order."""
    import redis
    from django.db import connections, transaction

    from locks import RedisLock, fence_check

    client = redis.Redis(port=int(redis_port), socket_timeout=5)
    lock = RedisLock(name, ttl=5.0, client=client)
    print("running", flush=True)
    for _ in range(int(count)):
        assert lock.acquire(blocking=True, timeout=30)
        try:
            with transaction.atomic():
                fence_check(name, lock.fencing_token)
            client.rpush(f"{name}:log", lock.fencing_token)
        finally:
            lock.release()
    connections.close_all()
    print("done", flush=True)


def _contract_lock(backend, name, ttl):
    import locks

    options = {} if backend == "mysql" else {"auto_renew": True}
    return locks.lock(name, backend=backend, ttl=float(ttl), **options)


def count(backend, name, iterations, directory):
    """The mutual-exclusion run: wait for "go", then increment a racy file counter under the lock.

    Entering makes an O_EXCL marker file and leaving removes it, so a second holder
    inside at the same time is caught in the act, not just by a short count.
    """
    import os
    from pathlib import Path

    from django.db import connections

    folder = Path(directory)
    lock = _contract_lock(backend, name, 10)
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    for _ in range(int(iterations)):
        assert lock.acquire(timeout=60)
        try:
            try:
                os.close(os.open(folder / "inside", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                with open(folder / "overlaps", "a") as overlaps:
                    overlaps.write(f"{os.getpid()}\n")
            value = int((folder / "counter").read_text() or 0)
            time.sleep(0)  # hand the CPU over between the read and the write
            (folder / "counter").write_text(str(value + 1))
            with open(folder / "tokens", "a") as tokens:
                tokens.write(f"{lock.fencing_token}\n")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / "inside")
        finally:
            lock.release()
    connections.close_all()
    print("done", flush=True)


def hold(backend, name, ttl):
    """Hold the lock until told; then, on "finish PK", write under its token and release, saying how each went."""
    from django.db import connections

    from locks import LockNotOwnedError, LockUnavailable, fenced_update
    from shop.models import Product

    lock = _contract_lock(backend, name, ttl)
    assert lock.acquire(blocking=False)
    print("acquired", lock.fencing_token, flush=True)
    command, pk = sys.stdin.readline().split()
    assert command == "finish"
    if lock.issues_fencing_tokens:
        rows = Product.objects.filter(pk=int(pk))
        written = fenced_update(
            rows, resource=lock.fence_resource, token=lock.fencing_token, backend=backend, stock=111
        )
        print("wrote", written, flush=True)
    try:
        lock.release()
        print("released", flush=True)
    except LockNotOwnedError:
        print("not-owned", flush=True)
    except LockUnavailable:
        print("unavailable", flush=True)
    connections.close_all()
    print("done", flush=True)


COMMANDS = {
    "hold-redis": hold_redis,
    "hold-mysql": hold_mysql,
    "contend-redis": contend_redis,
    "fence-run": fence_run,
    "count": count,
    "hold": hold,
}


if __name__ == "__main__":
    django.setup()
    command, *args = sys.argv[1:]
    COMMANDS[command](*args)

"""Lock holders that run in a child process, for the tests that kill one or need several.

Run as `python -m locks.tests.workers COMMAND ARGS...` with the parent test's
environment (see the `worker` fixture); each prints one line when it reaches the point
the test waits for.
"""

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


COMMANDS = {"hold-redis": hold_redis, "hold-mysql": hold_mysql, "contend-redis": contend_redis, "fence-run": fence_run}


if __name__ == "__main__":
    django.setup()
    command, *args = sys.argv[1:]
    COMMANDS[command](*args)

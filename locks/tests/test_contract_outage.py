"""The contract when the lock service goes away mid-hold: on_lost, then a clear error, never a hang.

Each backend gets servers of its own here, since the test kills them. The MySQL named
lock is the exception: the shared MariaDB cannot be stopped under other test runs, so
its lock's own connection is killed instead, which is the server going away as far as
that lock can tell.
"""

import threading
import time

import pytest
from django.db import connection

from locks import EtcdLock, LockError, LockUnavailable, MySQLNamedLock, RedisLock, RedLock, ZooKeeperLock
from locks.tests.redis_server import RedisServer
from locks.tests.servers import EtcdServer, ZooKeeperServer

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 2.0


class Outage:
    """Private servers for one backend, a lock on them, and a way to take the service away."""

    def __init__(self, backend, workdir):
        self.backend, self.servers = backend, []
        if backend in ("redis", "redlock"):
            self.servers = [RedisServer(workdir) for _ in range(1 if backend == "redis" else 3)]
            for server in self.servers:
                server.start()
        elif backend == "zookeeper":
            self.servers = [ZooKeeperServer(workdir, fsync=False).start()]
        elif backend == "etcd":
            self.servers = [EtcdServer(workdir).start()]

    def make(self, name, **options):
        if self.backend == "redis":
            client = self.servers[0].client(socket_timeout=0.2, socket_connect_timeout=0.2)
            return RedisLock(name, ttl=TTL, auto_renew=True, client=client, **options)
        if self.backend == "redlock":
            return RedLock(name, ttl=TTL, auto_renew=True, urls=[s.url() for s in self.servers], **options)
        if self.backend == "zookeeper":
            return ZooKeeperLock(name, ttl=TTL, hosts=self.servers[0].hosts, **options)
        if self.backend == "etcd":
            return EtcdLock(name, ttl=TTL, auto_renew=True, url=self.servers[0].url, **options)
        return MySQLNamedLock(name, **options)

    def take_away(self, lock):
        if self.backend == "mysql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT IS_USED_LOCK(%s)", [lock.server_name])
                cursor.execute(f"KILL {int(cursor.fetchone()[0])}")
            return
        for server in self.servers[: len(self.servers) // 2 + 1]:  # RedLock: a majority
            server.stop()

    def close(self):
        for server in self.servers:
            server.stop()


@pytest.fixture(params=["redis", "redlock", "zookeeper", "etcd", "mysql"])
def outage(request, tmp_path):
    each = Outage(request.param, tmp_path)
    yield each
    each.close()


def test_the_service_going_away_mid_hold_calls_on_lost_and_every_call_then_fails_clearly(outage):
    fired = threading.Event()
    lock = outage.make("outage:job", on_lost=lambda lock: fired.set())
    assert lock.acquire(blocking=False)
    started = time.monotonic()
    outage.take_away(lock)

    if outage.backend != "mysql":  # a named lock's loss is seen at the next use of its connection
        assert fired.wait(TTL + 1.0), "on_lost never fired"
        assert time.monotonic() - started < TTL, "on_lost must come while the lease still runs"

    before = time.monotonic()
    with pytest.raises(LockError):  # LockUnavailable, or LockNotOwnedError once the loss is known
        lock.release()
    assert time.monotonic() - before <= TTL + 0.5, "release hung"
    assert fired.is_set()

    if outage.backend != "mysql":
        before = time.monotonic()
        with pytest.raises(LockUnavailable):
            outage.make("outage:other").acquire(timeout=0.5)
        assert time.monotonic() - before <= TTL + 0.5, "acquire hung on a dead service"

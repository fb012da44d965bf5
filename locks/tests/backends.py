"""Every lock backend as the contract suite sees it: how to make its lock here and in a child process.

The servers are real and private to the test session: one ZooKeeper, one etcd and three
redis-servers for RedLock, on free loopback ports, started once and stopped at the
end (locks/tests/servers.py, redis_server.py). The Redis and MySQL backends use the
test settings' own Redis db and test database.
"""

import dataclasses
import uuid

import locks
from locks.factory import backend_class

BACKEND_NAMES = ("redis", "redlock", "mysql", "zookeeper", "etcd")


@dataclasses.dataclass
class Backend:
    name: str
    options: dict  # constructor options that point the lock at the test's servers
    env: dict  # the same, as settings for a child process
    # After a holder is killed, its lock frees between `ttl * free_after[0]` (renewals
    # every ttl/3 leave at least 2/3 of a lease) and `ttl + free_after[1]` seconds (the
    # server's expiry granularity). The MySQL named lock frees at once: (0, 0.5).
    free_after: tuple = (0.5, 0.5)

    @property
    def fencing(self):
        return backend_class(self.name).issues_fencing_tokens

    @property
    def has_lease(self):
        return self.name != "mysql"

    def make(self, name, ttl=5.0, **options):
        return locks.lock(name, backend=self.name, ttl=ttl, **{**self.options, **options})


def unique(prefix):
    """A lock name no other test uses: the ZooKeeper, etcd and RedLock servers live for the whole session."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


def describe(name, servers):
    """The Backend for `name`, given the session's servers {"zookeeper": ..., "etcd": ..., "redlock": [...]}."""
    if name == "redis":
        return Backend("redis", {}, {})
    if name == "mysql":
        return Backend("mysql", {}, {}, free_after=(0.0, 0.5))
    if name == "redlock":
        urls = [server.url() for server in servers["redlock"]]
        return Backend("redlock", {"urls": urls}, {"REDLOCK_URLS": ",".join(urls)})
    if name == "zookeeper":
        hosts = servers["zookeeper"].hosts
        # Sessions expire on the server's tick (100 ms here) after their timeout.
        return Backend("zookeeper", {"hosts": hosts}, {"ZOOKEEPER_HOSTS": hosts}, free_after=(0.5, 1.0))
    if name == "etcd":
        url = servers["etcd"].url
        # etcd's lessor looks for expired leases every 500 ms.
        return Backend("etcd", {"url": url}, {"ETCD_URL": url}, free_after=(0.5, 1.2))
    raise ValueError(name)

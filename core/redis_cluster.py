"""Redis Cluster for every Redis use of the shop: REDIS_CLUSTER_NODES=host:port,host:port,...

django-redis has no cluster client, so `ClusterConnectionFactory` (its CONNECTION_FACTORY
in config/settings.py) builds a redis-py RedisCluster from the cache's LOCATION, which in
cluster mode is the comma-separated start-up node list. The cache, sessions, the sale
state, the order streams, the locks and the rate limits all use that one client; every
Lua script runs unchanged because each sale's (and each lock's) keys share a hash tag,
so they live in one slot.

Bounds (docs/scale-out.md): a cluster client retries a failed command after refreshing
the slot map, up to 10 times by default with back-off, each try waiting a socket
timeout again; a paused node then held a request for seconds instead of a 503 within
one. So
the client gets REDIS_CLUSTER_RETRIES (0 by default: MOVED and ASK redirections are
followed all the same, they are no retries) and the shop's REDIS_SOCKET_TIMEOUT, and
`longest_call_s` tells the lock library what one command may cost.

The helpers take either kind of client, so callers need not know which one they hold.
"""

import os
import threading

from django_redis.pool import ConnectionFactory
from redis import BlockingConnectionPool
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from core.redis_errors import REDIS_ERRORS

__all__ = ["REDIS_ERRORS", "ClusterConnectionFactory", "build", "is_cluster", "mget", "primaries"]


def parse_nodes(text):
    """ "h1:p1,redis://h2:p2/0" -> [(h1, p1), (h2, p2)]."""
    nodes = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            part = part.split("://", 1)[1]
        hostport = part.split("/", 1)[0].rsplit("@", 1)[-1]
        host, _, port = hostport.rpartition(":")
        nodes.append((host or "127.0.0.1", int(port or 6379)))
    if not nodes:
        raise ValueError(f"no Redis Cluster node in {text!r}")
    return nodes


class _Pipeline(ClusterPipeline):
    """A non-transactional cluster pipeline that also takes TIME and EVALSHA, which redis-py blocks."""

    def time(self):
        """TIME from any one node: the writers' lag (seckill/intents.py) reads the clock in the
        same round trip as the stream."""
        return self.execute_command("TIME")

    def evalsha(self, sha, numkeys, *keys_and_args):
        """A script routed by its keys like any keyed command: every script of the shop has
        all its keys in one slot (the bench pipelines purchase.lua, bench/writer_phase.py).
        The script must be loaded on the masters first (SCRIPT LOAD goes to all of them)."""
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)


class ShopRedisCluster(RedisCluster):
    """redis-py's RedisCluster whose MGET works across slots and whose pipelines take TIME and EVALSHA.

    MGET is one per slot (redis-py's mget_nonatomic), so django-redis's get_many works on
    keys of any slots; it is atomic per slot only, which no caller relies on.
    """

    def mget(self, keys, *args):
        return self.mget_nonatomic(keys, *args)

    def determine_slot(self, *args):
        """XREADGROUP and XREAD routed by their stream keys, read here from the arguments.

        redis-py finds the keys of these "movable keys" commands by asking the cluster's
        default node (COMMAND GETKEYS) before every call: with that one node dead, every
        order writer's stream read failed, on every master, for the whole failover.
        Every stream the shop reads in one call is one sale's or bucket's, so one slot."""
        if str(args[0]).upper() not in ("XREADGROUP", "XREAD"):
            return super().determine_slot(*args)
        words = [(a.decode() if isinstance(a, bytes) else str(a)).upper() for a in args]
        rest = args[words.index("STREAMS") + 1 :]
        slots = {self.keyslot(key) for key in rest[: len(rest) // 2]}
        if len(slots) != 1:
            raise RedisClusterException(f"{args[0]} over streams of {len(slots)} slots")
        return slots.pop()

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        if not transaction:
            pipe.__class__ = _Pipeline
        return pipe


def build(nodes, *, socket_timeout, connect_timeout=None, retries=0, max_connections=100, pool_timeout=None):
    """A RedisCluster over the start-up `nodes` ([(host, port)] or "h:p,h:p").

    Each node gets a blocking pool of `max_connections` (a thread waits up to
    `pool_timeout` for a free connection, as the standalone client does), and the
    cluster-level retry is `retries` times with no back-off.
    """
    found = parse_nodes(nodes) if isinstance(nodes, str) else list(nodes)
    (first_host, first_port), rest = found[0], found[1:]
    return ShopRedisCluster(
        url=f"redis://{first_host}:{first_port}",  # the url form is the one that takes a pool class
        startup_nodes=[ClusterNode(host, port) for host, port in rest],
        retry=Retry(NoBackoff(), retries),
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout or socket_timeout,
        connection_pool_class=BlockingConnectionPool,
        max_connections=max_connections,
        timeout=pool_timeout or socket_timeout * 2,
    )


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis's CONNECTION_FACTORY for a cluster: one RedisCluster per node list and process."""

    _clusters = {}
    _guard = threading.Lock()

    def connect(self, url):
        key = (os.getpid(), url)
        client = self._clusters.get(key)
        if client is None:
            with self._guard:
                client = self._clusters.get(key)
                if client is None:  # a failed build raises and caches nothing: the next call tries again
                    client = self._clusters[key] = self._build(url)
        return client

    def _build(self, url):
        timeout = self.options.get("SOCKET_TIMEOUT") or 1.0
        pool = self.options.get("CONNECTION_POOL_KWARGS", {})
        return build(
            url,
            socket_timeout=timeout,
            connect_timeout=self.options.get("SOCKET_CONNECT_TIMEOUT") or timeout,
            retries=int(self.options.get("CLUSTER_RETRIES", 0)),
            max_connections=pool.get("max_connections", 100),
            pool_timeout=pool.get("timeout"),
        )

    def disconnect(self, connection):
        connection.disconnect_connection_pools()


def is_cluster(client):
    return isinstance(client, RedisCluster)


def primaries(client):
    """Per-node clients of the cluster's masters, or [client] for a standalone server."""
    if not is_cluster(client):
        return [client]
    return [client.get_redis_connection(node) for node in client.get_primaries()]


def mget(client, keys):
    """MGET that works across slots: on a cluster, one MGET per slot (redis-py's mget_nonatomic)."""
    keys = list(keys)
    if not keys:
        return []
    return client.mget_nonatomic(keys) if is_cluster(client) else client.mget(keys)


def connection_options(client):
    """The connection keyword arguments of either kind of client (socket timeout, retry...)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        return pool.connection_kwargs
    manager = getattr(client, "nodes_manager", None)
    return manager.connection_kwargs if manager is not None else {}


def socket_timeout(client):
    return connection_options(client).get("socket_timeout")


def longest_call_s(client):
    """How long one command may block: a socket timeout for the first try and each retry.

    A standalone client from django-redis does not retry (a bare redis.Redis() does by
    default); a cluster client retries at its own level, its nodes never.
    """
    timeout = socket_timeout(client)
    if not timeout:
        return 0.0
    if is_cluster(client):
        retries = client.retry.get_retries()
    else:
        options = connection_options(client)
        if options.get("retry") is not None:
            retries = options["retry"].get_retries()
        else:
            retries = 1 if options.get("retry_on_error") or options.get("retry_on_timeout") else 0
    return timeout * (1 + max(retries, 0))

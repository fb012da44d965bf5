"""The one tuple of errors that mean "Redis did not answer", standalone or Redis Cluster.

redis-py raises RedisError for a standalone server, but a cluster client also raises
RedisClusterException and its subclasses (SlotNotCoveredError when no reachable node
serves a key's slot, CrossSlotTransactionError, "cannot be connected" when no start-up
node answers), which are not RedisErrors. Catch REDIS_ERRORS wherever a Redis outage
is handled, so an unreachable cluster is the same 503 as an unreachable server
(core/outage.py), never a 500.
"""

from redis.exceptions import RedisClusterException, RedisError

REDIS_ERRORS = (RedisError, RedisClusterException)

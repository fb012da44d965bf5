"""Locks for the flash-sale shop: one interface, a Redis and a MySQL backend, fencing.

Which one to use for which job, and what each does not promise: docs/locks.md.
"""

from seckill.locks.base import Lock
from seckill.locks.errors import (
    LockAcquireTimeout,
    LockError,
    LockNotOwnedError,
    StaleTokenError,
    UnableToAcquireLock,
)
from seckill.locks.fencing import FencingToken, fence_check, fenced_update
from seckill.locks.metrics import LockMetrics, lock_metrics
from seckill.locks.mysql import MySQLNamedLock
from seckill.locks.redis_lock import RedisLock
from shop.versioning import VersionConflict, update_with_version

__all__ = [
    "FencingToken",
    "Lock",
    "LockAcquireTimeout",
    "LockError",
    "LockMetrics",
    "LockNotOwnedError",
    "MySQLNamedLock",
    "RedisLock",
    "StaleTokenError",
    "UnableToAcquireLock",
    "VersionConflict",
    "fence_check",
    "fenced_update",
    "lock_metrics",
    "update_with_version",
]

"""The lock library: one interface; Redis, RedLock, MySQL, ZooKeeper and etcd backends; fencing, metrics.

Which lock for which job, and what each does not promise: docs/locks.md. The library
imports nothing of the shop but `core`, so any app may take a lock.

Names are resolved on first use (PEP 562): this package is also a Django app, and
Django imports an app's package before its models may be loaded.
"""

import importlib

_EXPORTS = {
    "Lock": "locks.base",
    "LockAcquireTimeout": "locks.errors",
    "LockError": "locks.errors",
    "LockUnavailable": "locks.errors",
    "EtcdLock": "locks.etcd",
    "RedLock": "locks.redlock",
    "ZooKeeperLock": "locks.zookeeper",
    "lock": "locks.factory",
    "lock_for": "locks.factory",
    "BACKENDS": "locks.factory",
    "update_with_version": "core.versioning",
    "LockNotOwnedError": "locks.errors",
    "StaleTokenError": "locks.errors",
    "TokenNotIssuedError": "locks.errors",
    "fence_check": "locks.fencing",
    "fenced_update": "locks.fencing",
    "held": "locks.holding",
    "release_quietly": "locks.holding",
    "lock_metrics": "locks.metrics",
    "MySQLNamedLock": "locks.mysql",
    "RedisLock": "locks.redis_lock",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'locks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return __all__

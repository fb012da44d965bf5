"""Choosing a lock backend by name, and by the settings of the job that takes the lock.

    locks.lock("report:nightly", backend="zookeeper", ttl=10)
    locks.lock_for("reconciliation", "reconcile:run")     # settings.LOCKS["reconciliation"]

Every backend answers the interface of locks/base.py, so a job can move from one to
another by settings alone. What differs is what each guarantees (docs/locks.md), and
one thing a caller must keep in mind: fencing tokens of different backends are not
comparable, so a guarded write passes `lock.fence_resource` to fence_check, which is
different for each backend, and a lock without tokens (RedLock, MySQL) must not be
relied on for fencing at all (`lock.issues_fencing_tokens`).
"""

import importlib

from django.conf import settings

from locks.base import check_seconds

BACKENDS = {
    "redis": ("locks.redis_lock", "RedisLock"),
    "redlock": ("locks.redlock", "RedLock"),
    "mysql": ("locks.mysql", "MySQLNamedLock"),
    "zookeeper": ("locks.zookeeper", "ZooKeeperLock"),
    "etcd": ("locks.etcd", "EtcdLock"),
}


def backend_class(backend):
    try:
        module, name = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown lock backend {backend!r}; choose one of {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), name)


def lock(name, *, backend, ttl, **options):
    """A new lock object of `backend` for `name`; `options` go to that backend's constructor.

    `ttl` is the lease: the Redis key's expiry, each RedLock server's, the ZooKeeper
    session timeout, the etcd lease (whole seconds). A MySQL named lock has no lease (it
    lasts as long as its connection): its ttl is checked and otherwise unused, and its
    wait bound is `blocking_timeout`.
    """
    cls = backend_class(backend)
    ttl = check_seconds(ttl, "ttl")
    if backend == "mysql":
        options.pop("auto_renew", None)  # nothing to renew: the connection is the lock
        return cls(name, **options)
    return cls(name, ttl=ttl, **options)


def lock_for(job, name=None, **overrides):
    """The lock `settings.LOCKS[job]` describes, for `name` (default: the job's name)."""
    try:
        config = dict(settings.LOCKS[job])
    except KeyError:
        raise ValueError(f"settings.LOCKS has no entry for the job {job!r}") from None
    config.update(overrides)
    backend = config.pop("backend")
    ttl = config.pop("ttl")
    if backend != "redis":
        config.pop("fencing", None)  # only the Redis lock can turn its tokens off
    return lock(name or job, backend=backend, ttl=ttl, **config)

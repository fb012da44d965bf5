"""locks.lock() and locks.lock_for(): one signature for every backend, the job's backend from settings."""

import pytest

import locks
from locks import EtcdLock, MySQLNamedLock, RedisLock, RedLock, ZooKeeperLock


def test_the_factory_builds_each_backend_with_the_same_signature(settings):
    settings.REDLOCK_URLS = ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0", "redis://127.0.0.1:3/0"]
    built = {name: locks.lock("job:1", backend=name, ttl=5) for name in locks.BACKENDS}
    assert isinstance(built["redis"], RedisLock) and built["redis"].ttl == 5
    assert isinstance(built["redlock"], RedLock) and built["redlock"].quorum == 2
    assert isinstance(built["mysql"], MySQLNamedLock)
    assert isinstance(built["zookeeper"], ZooKeeperLock) and built["zookeeper"].hosts == settings.ZOOKEEPER_HOSTS
    assert isinstance(built["etcd"], EtcdLock) and built["etcd"].url == settings.ETCD_URL
    assert {name for name, lock in built.items() if lock.issues_fencing_tokens} == {"redis", "zookeeper", "etcd"}
    assert built["redis"].fence_resource == "job:1" and built["etcd"].fence_resource == "etcd:job:1"
    with pytest.raises(ValueError, match="unknown lock backend"):
        locks.lock("job:1", backend="consul", ttl=5)


def test_redlock_refuses_fewer_than_three_servers():
    with pytest.raises(ValueError, match="at least 3"):
        locks.lock("job:1", backend="redlock", ttl=5, urls=["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"])


def test_lock_for_takes_the_jobs_backend_and_options_from_settings(settings):
    settings.LOCKS = {
        "nightly": {"backend": "etcd", "ttl": 20, "auto_renew": True},
        "warm": {"backend": "redis", "ttl": 30, "fencing": False},
    }
    nightly = locks.lock_for("nightly", "nightly:42", metric_label="nightly_job")
    assert isinstance(nightly, EtcdLock) and nightly.ttl == 20 and nightly.auto_renew
    assert nightly.name == "nightly:42" and nightly.metric_label == "nightly_job"
    warm = locks.lock_for("warm")
    assert isinstance(warm, RedisLock) and warm.name == "warm" and warm.fencing_token is None and not warm.fencing
    settings.LOCKS["warm"]["backend"] = "zookeeper"  # fencing=False means nothing to the others
    assert isinstance(locks.lock_for("warm"), ZooKeeperLock)
    with pytest.raises(ValueError, match="no entry"):
        locks.lock_for("payouts")


def test_the_shipped_job_settings_build_locks():
    assert isinstance(locks.lock_for("reconciliation", "reconcile:run"), MySQLNamedLock)
    assert isinstance(locks.lock_for("warmup", "seckill:1:warm"), RedisLock)

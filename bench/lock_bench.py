"""`make bench-locks`: each lock backend on real servers, measured the same way.

For redis, redlock (3 servers), mysql, zookeeper and etcd:
  - uncontended acquire + release: one process, one lock name, p50 and p99 of the pair;
  - contended hand-overs per second: 8 processes released together by a barrier, each
    taking and releasing one shared lock for a fixed time; every acquisition is a hand-over;
  - recovery after the holder is killed: a child takes the lock (lease 2 s, renewed),
    is SIGKILLed, and we time how long until a waiter gets the lock.

It starts its own redis-servers, ZooKeeper and etcd on free loopback ports, data on
disk with fsync on (production defaults, not the test suite's tmpfs), and uses the
configured MariaDB for the named lock and the Redis lock's fencing epochs. Writes
bench/results/locks-<stamp>.json, bench/results/locks-latest.json and a plot,
bench/results/locks-latest.png. ARGS=--quick: fewer rounds, for a smoke run.
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
BACKENDS = ("redis", "redlock", "mysql", "zookeeper", "etcd")
CONTENDERS = 8
RECOVERY_TTL_S = 2.0


def _setup_django():
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def make_lock(backend, name, conf, ttl=10.0, **options):
    """A lock of `backend` on the benchmark's servers; `conf` is plain data, so child processes can use it."""
    import locks

    if backend == "redis":
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(conf["redis"], socket_timeout=5, retry=Retry(NoBackoff(), 0))
        return locks.RedisLock(name, ttl=ttl, client=client, **options)
    if backend == "redlock":
        return locks.lock(name, backend="redlock", ttl=ttl, urls=conf["redlock"], **options)
    if backend == "zookeeper":
        return locks.lock(name, backend="zookeeper", ttl=ttl, hosts=conf["zookeeper"], **options)
    if backend == "etcd":
        return locks.lock(name, backend="etcd", ttl=ttl, url=conf["etcd"], **options)
    options.pop("auto_renew", None)
    return locks.lock(name, backend="mysql", ttl=ttl, **options)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def uncontended(backend, conf, rounds):
    lock = make_lock(backend, f"bench:solo:{uuid.uuid4().hex[:8]}", conf)
    for _ in range(20):  # warm: connections, scripts, the fence counter, the ZooKeeper session
        assert lock.acquire(blocking=False)
        lock.fencing_token  # noqa: B018 - the first read seeds a Redis fence counter
        lock.release()
    pairs = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert lock.acquire(blocking=False)
        lock.release()
        pairs.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(pairs, 0.5), 3), "p99_ms": round(percentile(pairs, 0.99), 3), "n": rounds}


def _contend(backend, conf, name, seconds, barrier, results):
    _setup_django()
    from django.db import connections

    lock = make_lock(backend, name, conf)
    got = 0
    barrier.wait(timeout=60)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lock.acquire(timeout=5):
            got += 1
            lock.release()
    connections.close_all()
    results.put(got)


def contended(backend, conf, seconds):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(CONTENDERS + 1), context.Queue()
    name = f"bench:shared:{uuid.uuid4().hex[:8]}"
    workers = [
        context.Process(target=_contend, args=(backend, conf, name, seconds, barrier, results))
        for _ in range(CONTENDERS)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)  # every process is set up: start the clock together
    started = time.monotonic()
    counts = [results.get(timeout=seconds + 120) for _ in workers]
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join(timeout=30)
    return {
        "handovers_per_s": round(sum(counts) / elapsed, 1),
        "fairness_min_max": [min(counts), max(counts)],
        "seconds": round(elapsed, 2),
    }


def _hold(backend, conf, name, ready):
    _setup_django()
    lock = make_lock(backend, name, conf, ttl=RECOVERY_TTL_S, auto_renew=True)
    assert lock.acquire(blocking=False)
    ready.set()
    time.sleep(3600)  # until killed


def recovery(backend, conf, rounds):
    context = multiprocessing.get_context("spawn")
    waits = []
    for _ in range(rounds):
        name = f"bench:crash:{uuid.uuid4().hex[:8]}"
        ready = context.Event()
        holder = context.Process(target=_hold, args=(backend, conf, name, ready))
        holder.start()
        assert ready.wait(60)
        time.sleep(1.0)  # a renewal or two
        waiter = make_lock(backend, name, conf, ttl=RECOVERY_TTL_S)
        holder.kill()
        killed = time.monotonic()
        assert waiter.acquire(timeout=RECOVERY_TTL_S * 3 + 5)
        waits.append(time.monotonic() - killed)
        waiter.release()
        holder.join(timeout=10)
    return {"median_s": round(statistics.median(waits), 3), "all_s": [round(w, 3) for w in waits]}


def start_servers(workdir):
    from locks.tests.redis_server import RedisServer
    from locks.tests.servers import EtcdServer, ZooKeeperServer

    redis_servers = [RedisServer(workdir) for _ in range(4)]
    for server in redis_servers:
        server.start()
    zookeeper = ZooKeeperServer(workdir, fsync=True).start()
    etcd = EtcdServer(workdir).start()
    conf = {
        "redis": redis_servers[0].url(),
        "redlock": [server.url() for server in redis_servers[1:]],
        "zookeeper": zookeeper.hosts,
        "etcd": etcd.url,
    }
    return conf, [*redis_servers, zookeeper, etcd]


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["backends"])
    rows = [result["backends"][n] for n in names]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    width = 0.38
    positions = range(len(names))
    axes[0].bar([p - width / 2 for p in positions], [r["uncontended"]["p50_ms"] for r in rows], width, label="p50")
    axes[0].bar([p + width / 2 for p in positions], [r["uncontended"]["p99_ms"] for r in rows], width, label="p99")
    axes[0].set_title("uncontended acquire + release (ms)")
    axes[0].legend()
    axes[1].bar(names, [r["contended"]["handovers_per_s"] for r in rows], color="tab:green")
    axes[1].set_title(f"hand-overs per second, {CONTENDERS} processes")
    axes[2].bar(names, [r["recovery"]["median_s"] for r in rows], color="tab:red")
    axes[2].set_title(f"recovery after SIGKILL (s), lease {RECOVERY_TTL_S:g} s")
    for axis in axes:
        axis.set_xticks(list(positions), names)
    figure.suptitle(f"make bench-locks, {result['machine']['cpus']} CPUs, {result['started']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run, not figures to quote")
    parser.add_argument("--only", choices=BACKENDS, action="append", help="run only these backends")
    args = parser.parse_args()
    rounds, seconds, recoveries = (100, 2.0, 1) if args.quick else (1000, 8.0, 3)
    _setup_django()
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lock-bench-"))
    conf, servers = start_servers(workdir)
    result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {
            "rounds": rounds,
            "contended_seconds": seconds,
            "contenders": CONTENDERS,
            "recovery_ttl_s": RECOVERY_TTL_S,
            "recoveries": recoveries,
            "servers": "all on loopback, one of each (RedLock: 3 redis-servers); ZooKeeper 3.8 tickTime 100 ms, "
            "etcd 3.4 heartbeat 10 ms; data on disk, fsync on; MariaDB from DATABASE_URL",
        },
        "backends": {},
    }
    try:
        for backend in args.only or BACKENDS:
            print(f"{backend}: uncontended", flush=True)
            row = {"uncontended": uncontended(backend, conf, rounds)}
            print(f"{backend}: contended", flush=True)
            row["contended"] = contended(backend, conf, seconds)
            print(f"{backend}: recovery", flush=True)
            row["recovery"] = recovery(backend, conf, recoveries)
            result["backends"][backend] = row
            print(backend, json.dumps(row), flush=True)
    finally:
        for server in servers:
            server.stop()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(result, indent=2)
    (RESULTS / f"locks-{stamp}.json").write_text(text)
    (RESULTS / "locks-latest.json").write_text(text)
    plot(result, RESULTS / "locks-latest.png")
    print(f"wrote bench/results/locks-{stamp}.json and bench/results/locks-latest.png")


if __name__ == "__main__":
    main()

"""The shop's processes on the namespace hosts of chaos/multihost/net.py, and the Redis Cluster
they share.

Every process runs with the production settings, except those named in SETTINGS (and
why); web hosts run the Procfile's gunicorn command, writers `manage.py seckill_writer`,
the ops host Celery's worker and beat, all as a deployment would start them. Process
groups and their stop come from bench/stack.py.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import redis

from bench.stack import ROOT, VENV_BIN, Stack, wait_until
from chaos.multihost import net

REDIS_PORTS = [7201, 7202, 7203, 7204, 7205, 7206]
# The time the replicas give a silent master before they elect one of them: short, so a
# failover happens within the sale (Redis's default, 15 s, would outlast it).
NODE_TIMEOUT_MS = 3000
DB_NAME = "flashshop_multihost"
VHOST = "flashshop_multihost"  # its own RabbitMQ vhost: its worker takes no other run's tasks
WEB_PORT = 8000

SETTINGS = {
    "DEBUG": "0",
    "SECRET_KEY": "multihost-run-secret-key-not-for-production-0123456789abcdef",
    "ALLOWED_HOSTS": ",".join(net.address(h) for h in net.HOSTS),
    # Every buyer arrives from the bridge's address, as behind one proxy without X-Forwarded-For.
    "SECKILL_RATE_LIMIT_PER_IP": "0",
    # A stopped writer's entries are claimed by the other after 3 s (production: 10 s), so
    # the claim happens within the sale.
    "SECKILL_WRITER_CLAIM_IDLE_MS": "3000",
    "LOG_LEVEL": os.environ.get("MULTIHOST_LOG_LEVEL", "WARNING"),  # INFO: a line per purchase, with its time
    "LOG_FORMAT": "json",
}


def redis_nodes():
    return ",".join(f"{net.HUB}:{p}" for p in REDIS_PORTS)


def shop_env(base):
    env = {
        k: v for k, v in base.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(SETTINGS)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"mysql://root@{net.HUB}:3306/{DB_NAME}",
        REDIS_CLUSTER_NODES=redis_nodes(),
        CELERY_BROKER_URL=f"amqp://guest:guest@{net.HUB}:5672/{VHOST}",
    )
    return env


def cluster_script(*args, check=True):
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "REDIS_CLUSTER_PORTS": " ".join(map(str, REDIS_PORTS)),
        "REDIS_CLUSTER_HOST": net.HUB,
        "REDIS_CLUSTER_NODE_TIMEOUT_MS": str(NODE_TIMEOUT_MS),
    }
    done = subprocess.run(  # noqa: S603
        [str(ROOT / "scripts" / "redis_cluster.sh"), *args], env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"scripts/redis_cluster.sh {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def node_pid(port):
    return int((ROOT / "var" / "redis-cluster" / str(port) / "redis.pid").read_text())


def ensure_vhost():
    """The run's vhost, guest allowed on it; False if rabbitmqctl cannot be used (then "/" is shared)."""
    try:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True, timeout=60)  # noqa: S603, S607
        done = subprocess.run(  # noqa: S603
            ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],  # noqa: S607
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class Hosts:
    """The processes of one run, by host; close() stops them all."""

    def __init__(self, workdir, base_env):
        self.stack = Stack(workdir)
        self.env = shop_env(base_env)
        self.webs = {}
        self.writers = {}
        self.ops = []

    def close(self):
        for service in self.stack.services:  # a writer a fault left stopped must hear the stop signal
            with contextlib.suppress(ProcessLookupError):
                service.popen.send_signal(signal.SIGCONT)
        self.stack.close()

    def start_web(self, host, workers=2, threads=8):
        argv = [
            str(VENV_BIN / "gunicorn"), "config.wsgi", "--config", "python:config.gunicorn",
            "--bind", f"{net.address(host)}:{WEB_PORT}", "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(threads), "--timeout", "30", "--log-level", "warning",
        ]  # fmt: skip
        service = self.stack.start(host, net.in_host(host, argv), env=self.env, stop_signal=signal.SIGINT)
        self.webs[host] = service
        return service

    def start_writer(self, host):
        argv = [str(VENV_BIN / "python"), "manage.py", "seckill_writer", "--consumer", f"writer-{host}"]
        service = self.stack.start(f"writer-{host}", net.in_host(host, argv), env=self.env)
        self.writers[host] = service
        return service

    def start_ops(self, host, workdir):
        """Celery's worker and beat: the stranded-unit sweep, transfer finishing, order expiry."""
        schedule = Path(workdir) / "beat-schedule"
        for old in Path(workdir).glob("beat-schedule*"):
            old.unlink()
        worker = [
            str(VENV_BIN / "celery"), "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency", "2",
            "--without-gossip", "--without-mingle", "--hostname", f"worker@{host}",
        ]  # fmt: skip
        beat = [str(VENV_BIN / "celery"), "-A", "config", "beat", "--loglevel", "WARNING", "--schedule", str(schedule)]
        self.ops.append(self.stack.start(f"worker-{host}", net.in_host(host, worker), env=self.env))
        self.ops.append(self.stack.start(f"beat-{host}", net.in_host(host, beat), env=self.env))

    def wait_webs(self, timeout=90):
        for host, service in self.webs.items():
            url = f"http://{net.address(host)}:{WEB_PORT}/healthz"
            wait_until(lambda u=url: _healthy(u), timeout, f"gunicorn on {host}", service=service)

    def stop_process(self, service):
        service.popen.send_signal(signal.SIGSTOP)

    def continue_process(self, service):
        service.popen.send_signal(signal.SIGCONT)


def _healthy(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own host
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def slot_master(port, slot):
    """The port of the master that node `port` says serves `slot` (None if no node does)."""
    client = redis.Redis(host=net.HUB, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        return None
    finally:
        client.close()


def cluster_ok(port):
    client = redis.Redis(host=net.HUB, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return client.cluster("INFO").get("cluster_state") == "ok"
    finally:
        client.close()


def wait_failover(slots, dead_port, timeout=60):
    """Seconds until a live node serves every slot in `slots` that `dead_port` served and the
    cluster says ok (None if not within `timeout`)."""
    started = time.monotonic()
    witnesses = [p for p in REDIS_PORTS if p != dead_port]
    while time.monotonic() - started < timeout:
        try:
            if cluster_ok(witnesses[0]) and all(slot_master(witnesses[0], s) not in (dead_port, None) for s in slots):
                return time.monotonic() - started
        except redis.RedisError:
            pass
        time.sleep(0.1)
    return None

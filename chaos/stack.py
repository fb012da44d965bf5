"""The real stack a chaos scenario breaks: its own redis-server, gunicorn, order writers, Celery.

Process handling (process groups, clean stop) comes from bench/stack.py. Everything
here runs on loopback against a database and a Redis of the chaos run's own, so a
scenario that restarts or pauses Redis never touches anybody else's: the chaos
redis-server listens on a port of its own (chaos/run.py, chaos/tests/) and keeps its
files under the scenario's work directory.
"""

import contextlib
import itertools
import os
import shutil
import signal
import socket
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bench.stack import VENV_BIN, Stack, children_of, free_port, wait_http_ok, wait_until
from seckill import keys

# Short grace periods and claim timeouts, so that "stranded" and "claimed from a dead
# writer" happen within seconds; everything else is the production default.
CHAOS_SETTINGS = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECRET_KEY": "chaos-run-secret-key-not-for-production-0123456789abcdef",
    "SECKILL_RATE_LIMIT_PER_IP": "0",  # every buyer comes from 127.0.0.1
    "SECKILL_RESERVATION_GRACE_SECONDS": "3",
    # A writer's unsettled entries are claimed by another after 1.5 s (production: 10 s).
    "SECKILL_WRITER_CLAIM_IDLE_MS": "1500",
    # Flags expire only after 30 s: a unit given back must reach every web process through
    # the units-back channel (seckill/cache.py), which the mop-up (chaos/scenarios/
    # harness.py) would otherwise not notice is broken.
    "SECKILL_SOLD_OUT_RECHECK_SECONDS": "30",
    "DB_LOCK_WAIT_TIMEOUT": "2",
    "LOG_LEVEL": "WARNING",
}

_names = itertools.count(1)


class ChaosStack:
    """One scenario's processes. Use as a context manager; closing stops them all."""

    def __init__(self, workdir, database_url, redis_port, *, web_workers=3, extra=None):
        self.stack = Stack(workdir)
        self.redis_port = redis_port
        self.web_port = free_port(redis_port + 2000)  # 8420 for make chaos, 8430 for make test
        self.env = os.environ.copy()
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.pop("REDIS_CLUSTER_NODES", None)  # the scenarios fault their own standalone redis-server
        self.env.update(CHAOS_SETTINGS)
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=database_url,
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/1",
        )
        self.env.update(extra or {})
        self.web_workers = web_workers
        self.redis = None
        self.redis_aof = False
        self.web = None
        self.writers = []
        self.workers = []
        self.beats = []

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        # A process a fault left frozen would not act on the stop signal until continued.
        for service in self.stack.services:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGCONT)
        self.stack.close()

    def start_redis(self, *, aof=False):
        """A redis-server of this scenario. aof=True: appendonly yes, appendfsync always, so a
        write Redis has answered is on disk before the answer (it survives SIGKILL)."""
        self.redis_aof = aof
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
        argv = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--save", "", *persistence, "--dir", str(self.stack.workdir), "--loglevel", "warning",
        ]  # fmt: skip
        service = self.stack.start("redis", argv, env=os.environ.copy())

        def pong():
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(pong, 10, f"redis-server on port {self.redis_port}", service=service)
        ensure_owns_port(service, self.redis_port)
        self.redis = service
        return service

    def client(self, db=0):
        # No retries: redis-py would retry SHUTDOWN against the server it just stopped.
        return redis.Redis(port=self.redis_port, db=db, socket_timeout=2, retry=Retry(NoBackoff(), 0))

    def start_web(self, env=None, port=None, name="web", worker_timeout=30):
        """gunicorn with sync workers: one request per process, so a signal hits one request.

        worker_timeout=0 for a server under libfaketime: its master would read the
        workers' heartbeat files (stamped by the real kernel clock) as hours old.
        """
        port = port or self.web_port
        argv = [
            str(VENV_BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
            str(self.web_workers), "--worker-class", "sync", "--timeout", str(worker_timeout), "--log-level", "warning",
        ]  # fmt: skip
        service = self.stack.start(name, argv, env={**self.env, **(env or {})}, stop_signal=signal.SIGINT)
        wait_http_ok(service, f"http://127.0.0.1:{port}/healthz", timeout=60)
        ensure_owns_port(service, port)
        if name == "web":
            self.web = service
        return service

    def start_writer(self, activity_id=None):
        """One order writer, `manage.py seckill_writer` as the Procfile runs it, same env.

        Its consumer name is unique, so a replacement never inherits a dead writer's
        pending entries by name: it has to claim them after the claim timeout, as on a
        real host. With `activity_id` (a sale created before it), waits until the writer
        is in its read loop.
        """
        consumer = f"chaos-writer-{next(_names)}"
        argv = [str(VENV_BIN / "python"), "manage.py", "seckill_writer", "--consumer", consumer]
        service = self.stack.start(consumer, argv, env=self.env, stop_signal=signal.SIGTERM)
        service.consumer = consumer
        self.writers.append(service)
        if activity_id is not None:
            self.wait_writers_reading()
        return service

    def wait_writers_reading(self, timeout=30):
        """Until each of our writers is in its read loop; then no other reader may be there: a
        writer left over from an interrupted run (it reconnects to the same port) would take
        intents behind the scenario's back."""
        count = len(self.live_writers())
        wait_until(lambda: self.readers() >= count, timeout, f"{count} writer(s) reading")
        time.sleep(0.2)
        if self.readers() > count:
            raise RuntimeError(f"{self.readers()} stream readers on the chaos Redis, {count} started by this run")

    def readers(self):
        """Clients whose last command read a stream for the writers: one per writer in its loop
        (a consumer appears in XINFO only once it has read an entry)."""
        return sum(1 for c in self.client().client_list() if c.get("cmd") in ("xreadgroup", "xautoclaim"))

    def live_writers(self):
        return [w for w in self.writers if w.alive()]

    def consumers(self, activity_id):
        """{consumer name: entries it holds unsettled} in the sale's writer group."""
        found = self.client().xinfo_consumers(keys.intents(activity_id), keys.WRITER_GROUP)
        return {_text(c["name"]): int(c["pending"]) for c in found}

    def start_worker(self, name="worker", concurrency=2):
        argv = [
            str(VENV_BIN / "celery"), "-A", "config", "worker", "--loglevel", "WARNING",
            "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--hostname", f"{name}@%h",
        ]  # fmt: skip
        service = self.stack.start(name, argv, env=self.env, stop_signal=signal.SIGTERM)
        wait_until(lambda: len(children_of(service.pid)) >= concurrency, 30, f"{name} pool", service=service)
        self.workers.append(service)
        return service

    def start_beat(self, name="beat"):
        """A beat scheduler with a schedule file of its own run: a file left by an earlier run
        (last-run times, entries of an older config/beat.py) must not decide what fires now."""
        for old in self.stack.workdir.glob(f"{name}-schedule*"):
            old.unlink()
        argv = [
            str(VENV_BIN / "celery"), "-A", "config", "beat", "--loglevel", "WARNING",
            "--schedule", str(self.stack.workdir / f"{name}-schedule"),
        ]  # fmt: skip
        service = self.stack.start(name, argv, env=self.env)
        self.beats.append(service)
        return service

    # -- faults ---------------------------------------------------------------------

    def web_worker_pids(self):
        return children_of(self.web.pid)

    def restart_redis_empty(self):
        """SHUTDOWN NOSAVE, then a new empty redis-server on the same port."""
        old = self.redis
        with contextlib.suppress(redis.ConnectionError, redis.ResponseError):  # it hangs up as it goes
            self.client().shutdown(nosave=True)
        old.popen.wait(10)
        return self._start_again(old)

    def kill_redis(self):
        """SIGKILL the redis-server (a crash: nothing flushed beyond what AOF already holds),
        then start it again on the same port and directory: empty without AOF, its
        appendonly file replayed with it."""
        old = self.redis
        with contextlib.suppress(ProcessLookupError):
            os.kill(old.pid, signal.SIGKILL)
        old.popen.wait(10)
        return self._start_again(old)

    def _start_again(self, old):
        self.stack.untrack(old)
        self._wait_port_free(self.redis_port)
        return self.start_redis(aof=self.redis_aof)

    def pause(self, service_or_pid, seconds):
        pid = service_or_pid if isinstance(service_or_pid, int) else service_or_pid.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    @staticmethod
    def _wait_port_free(port, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"port {port} still in use")


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _listening_inodes(port):
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in open(table).read().splitlines()[1:]:  # noqa: SIM115 - a /proc read
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def ensure_owns_port(service, port):
    """The server that answered on `port` is ours, not another run's that took the port first
    (free_port() only says it was free a moment ago): its listening socket is one of our
    process's file descriptors. Without this a scenario could drive somebody else's stack."""
    inodes = _listening_inodes(port)
    for fd in os.listdir(f"/proc/{service.pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{service.pid}/fd/{fd}").removeprefix("socket:[").rstrip("]") in inodes:
                return
    raise RuntimeError(f"{service.name}: port {port} is held by another process (a concurrent run?)")

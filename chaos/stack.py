"""The real stack a chaos scenario breaks: its own redis-server, gunicorn, Celery.

Process handling (process groups, clean stop) comes from bench/stack.py. Everything
here runs on loopback against a database and a Redis of the chaos run's own, so a
scenario that restarts or pauses Redis never touches anybody else's.
"""

import contextlib
import os
import signal
import socket
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bench.stack import VENV_BIN, Stack, children_of, free_port, start_redis, wait_http_ok, wait_until

# Short leases and grace periods, so that "past its lease" and "stranded" happen within
# seconds; everything else is the production default.
CHAOS_SETTINGS = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECRET_KEY": "chaos-run-secret-key-not-for-production-0123456789abcdef",
    "SECKILL_RATE_LIMIT_PER_IP": "0",  # every buyer comes from 127.0.0.1
    "SECKILL_CUSTOMER_LOCK_TTL": "1.5",
    "SECKILL_CUSTOMER_LOCK_WAIT": "1.0",
    "SECKILL_RESERVATION_GRACE_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "8",  # a message not acked within 8 s is delivered again
    "DB_LOCK_WAIT_TIMEOUT": "2",
    "LOG_LEVEL": "WARNING",
}


class ChaosStack:
    """One scenario's processes. Use as a context manager; closing stops them all."""

    def __init__(self, workdir, database_url, redis_port, *, web_workers=3, extra=None):
        self.stack = Stack(workdir)
        self.redis_port = redis_port
        self.web_port = free_port(8400)
        self.env = os.environ.copy()
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
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
        self.web = None
        self.workers = []
        self.beats = []

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.stack.close()

    def start_redis(self):
        self.redis = start_redis(self.stack, self.redis_port)
        return self.redis

    def client(self, db=0):
        # No retries: redis-py 8 would retry SHUTDOWN against the server it just stopped.
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
        if name == "web":
            self.web = service
        return service

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
        self.stack.untrack(old)
        self._wait_port_free(self.redis_port)
        return self.start_redis()

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

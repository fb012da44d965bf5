"""A throwaway redis-server for tests that restart, pause or read stats of a server.

The shared server on 6379 is used by other test runs at the same time, so a test that
restarts Redis, stops it with SIGSTOP or reads INFO commandstats gets one of these.
"""

import contextlib
import shutil
import signal
import socket
import subprocess
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.process = None
        self.paused = False

    def start(self):
        executable = shutil.which("redis-server")
        assert executable, "redis-server is not installed"
        address = ["--port", str(self.port), "--bind", "127.0.0.1"]
        no_persistence = ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            [executable, *address, *no_persistence, "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 5
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
            finally:
                probe.close()

    def stop(self):
        if self.process is None:
            return
        self.resume()
        self.process.kill()
        self.process.wait(timeout=5)
        self.process = None

    def restart(self):
        """Kill and start again on the same port, empty: what a crash without persistence does."""
        self.stop()
        self.start()

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
            self.paused = False

    def client(self, **options):
        """A client configured like django-redis's: no silent retries of a failed command."""
        options.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from locks.tests.backends import BACKEND_NAMES, describe
from locks.tests.redis_server import RedisServer
from locks.tests.servers import EtcdServer, ZooKeeperServer

PROJECT_DIR = Path(settings.BASE_DIR)


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server, for tests that restart or pause it or read its stats."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def worker_environment():
    """The parent test's settings for a child process: the test database, the test Redis db."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "root") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    database_url = f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "LOG_LEVEL": "WARNING",
    }


class Worker:
    def __init__(self, *args, env=None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "locks.tests.workers", *args],
            cwd=PROJECT_DIR,
            env={**worker_environment(), **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self._pending = b""

    def read_line(self, timeout=15.0):
        """The child's next line as words, failing the test instead of hanging if it never comes."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            if not self._selector.select(max(deadline - time.monotonic(), 0)):
                raise AssertionError(f"worker said nothing within {timeout}s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            assert chunk, f"worker exited with {self.process.wait()}"
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode().split()

    def say(self, line):
        """Send the child one line on its stdin (the go of a barrier, or a command)."""
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=5)

    def finish(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self.read_line(timeout=max(deadline - time.monotonic(), 0.01))
            lines.append(line)
            if line == ["done"]:
                break
        assert self.process.wait(timeout=5) == 0
        return lines


@pytest.fixture
def worker():
    """Start lock holders in child processes; any still running at teardown is killed."""
    started = []

    def start(*args, env=None):
        started.append(Worker(*args, env=env))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            each.resume()
            each.kill()
        each.process.stdout.close()
        each.process.stdin.close()


# -- the contract suite's servers and backends (locks/tests/backends.py) -----------------


def _fast_dir(tmp_path_factory, name):
    """Server data on tmpfs where there is one: fsync is then free, and the suite stays quick."""
    shm = Path("/dev/shm")
    if shm.is_dir():
        return Path(tempfile.mkdtemp(prefix=f"flashshop-{name}-", dir=shm))
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory):
    root = _fast_dir(tmp_path_factory, "zookeeper")
    server = ZooKeeperServer(root, fsync=False).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    root = _fast_dir(tmp_path_factory, "etcd")
    server = EtcdServer(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redlock_servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("redlock")
    servers = [RedisServer(root) for _ in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


_SERVER_FIXTURES = {"zookeeper": "zookeeper_server", "etcd": "etcd_server", "redlock": "redlock_servers"}


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    """Each backend in turn; only the servers it needs are started (once per session)."""
    fixture = _SERVER_FIXTURES.get(request.param)
    servers = {request.param: request.getfixturevalue(fixture)} if fixture else {}
    return describe(request.param, servers)

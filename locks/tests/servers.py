"""Throwaway ZooKeeper and etcd servers on free loopback ports, for tests and the lock benchmark.

Each one runs from Debian's packages (`zookeeper`, `etcd-server`; make system-deps
installs them) in a data directory of its own, so a test may pause, kill or restart it
without touching anybody else's server. Both are tuned for fast failure detection:
ZooKeeper ticks every 100 ms (sessions may be as short as 0.2 s) and etcd's Raft
heartbeat is 10 ms, which brings etcd's shortest lease down from 1.5 s to its 1 s floor
(leases count whole seconds).
"""

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from locks.tests.redis_server import free_port

ZOOKEEPER_JARS = ("/usr/share/java/zookeeper.jar",)


def _wait_until(ready, what, process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout}s")
        time.sleep(0.02)


class _Server:
    """Start, stop, SIGSTOP/SIGCONT and SIGKILL one server process, by its own pid."""

    name = "server"

    def __init__(self, workdir):
        self.workdir = Path(workdir) / f"{self.name}-{free_port()}"
        self.workdir.mkdir(parents=True)
        self.process = None
        self.paused = False
        self._log = None

    def start(self):
        self._log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_until(self.ready, self.name, self.process)
        return self

    def stop(self):
        if self.process is None:
            return
        self.resume()
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None
        self._log.close()

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
            self.paused = False

    def command(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError


class ZooKeeperServer(_Server):
    """A standalone ZooKeeper 3.8 (QuorumPeerMain started directly, as zkServer.sh would)."""

    name = "zookeeper"
    TICK_MS = 100

    def __init__(self, workdir, *, fsync=True):
        super().__init__(workdir)
        self.port = free_port()
        java = shutil.which("java")
        jars = [jar for jar in ZOOKEEPER_JARS if Path(jar).exists()]
        assert java and jars, "ZooKeeper is not installed: run `make system-deps` (apt-get install zookeeper)"
        self._java, self._classpath = java, ":".join([str(self.workdir), *jars])
        (self.workdir / "data").mkdir()
        (self.workdir / "zoo.cfg").write_text(
            f"tickTime={self.TICK_MS}\n"
            f"dataDir={self.workdir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            f"minSessionTimeout={2 * self.TICK_MS}\n"
            "maxSessionTimeout=120000\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr\n" + ("" if fsync else "forceSync=no\n")
            # Tests only: skip the fsync of each write. The benchmark keeps it (the default).
        )

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def command(self):
        return [
            self._java,
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-Dzookeeper.admin.enableServer=false",
            f"-Dzookeeper.log.dir={self.workdir}",
            "-cp",
            self._classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.workdir / "zoo.cfg"),
        ]

    def ready(self):
        # `ruok` answers before the server serves sessions; `srvr` names its mode only then.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"srvr")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                return b"Mode:" in answer
        except OSError:
            return False


class EtcdServer(_Server):
    """A single-member etcd 3.4 cluster; clients talk to its v3 JSON gateway."""

    name = "etcd"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.port, self.peer_port = free_port(), free_port()
        assert shutil.which("etcd"), "etcd is not installed: run `make system-deps` (apt-get install etcd-server)"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            shutil.which("etcd"),
            "--name=test",
            f"--data-dir={self.workdir / 'data'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--heartbeat-interval=10",
            "--election-timeout=100",
            "--log-level=error",
        ]

    def ready(self):
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as answer:
                return b'"true"' in answer.read()
        except OSError:
            return False

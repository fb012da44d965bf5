"""Start and stop the benchmark's own processes: redis-server, gunicorn, the order writers, wrk.

Every process starts in a session (process group) of its own and is registered with a
`Stack`; `Stack.close()` (called from a `finally`, also on Ctrl-C) ends each group:
SIGTERM, then SIGKILL after a grace period. Nothing here touches a process it did not
start.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


def free_port(preferred):
    """`preferred` if nothing listens there on loopback, else any free port."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no clash
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def cpu_seconds(pid):
    """utime + stime of one process from /proc (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children_of(pid):
    """Direct children of `pid` (gunicorn's and Celery's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def pids_named(name):
    """Processes whose command name is `name` (to read mariadbd's CPU, not to signal it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


class Service:
    def __init__(self, name, popen, log_path, stop_signal=signal.SIGTERM):
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.stop_signal = stop_signal  # the signal that ends it fastest without harm

    @property
    def pid(self):
        return self.popen.pid

    def tree(self):
        return [self.pid, *children_of(self.pid)]

    def cpu(self):
        return sum(cpu_seconds(pid) for pid in self.tree())

    def alive(self):
        return self.popen.poll() is None

    def log_tail(self, lines=30):
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Stack:
    """The processes of one benchmark run; close() ends all of them."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.services = []

    def start(self, name, argv, env, cwd=ROOT, stop_signal=signal.SIGTERM):
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        popen = subprocess.Popen(  # noqa: S603 - our own argv
            argv,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        service = Service(name, popen, log_path, stop_signal)
        self.services.append(service)
        return service

    def track(self, name, popen, log_path):
        """Register a process started elsewhere (wrk) so close() ends it too."""
        service = Service(name, popen, log_path)
        self.services.append(service)
        return service

    def untrack(self, service):
        if service in self.services:
            self.services.remove(service)

    def stop(self, service, grace=5.0):
        members = service.tree() if service.popen.poll() is None else []
        if service.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, service.stop_signal)
            try:
                service.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGKILL)
                service.popen.wait(5)
        # Workers of a master that went first: only those still in our process group.
        for pid in members[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == service.pid:
                    os.kill(pid, signal.SIGKILL)
        self.untrack(service)

    def close(self, grace=5.0):
        """Signal every process group at once, then wait for each (SIGKILL after `grace`)."""
        services = list(reversed(self.services))
        members = {id(s): s.tree() if s.alive() else [] for s in services}
        for service in services:
            if service.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, service.stop_signal)
        deadline = time.monotonic() + grace
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.popen.wait(max(deadline - time.monotonic(), 0.1))
            try:
                self.stop(service, grace=0.1)
                for pid in members[id(service)][1:]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        if os.getpgid(pid) == service.pid:
                            os.kill(pid, signal.SIGKILL)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"  could not stop {service.name} (pid {service.pid}): {exc!r}")


def wait_until(check, timeout, what, interval=0.05, service=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited while starting:\n{service.log_tail()}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    tail = f"\n{service.log_tail()}" if service is not None else ""
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")


def start_redis(stack, port):
    service = stack.start(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(stack.workdir),
            "--loglevel",
            "warning",
        ],
        env=os.environ.copy(),
    )

    def pong():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_until(pong, 10, f"redis-server on port {port}", service=service)
    return service


def start_gunicorn(stack, name, port, env, *, workers, worker_class, threads):
    argv = [
        str(VENV_BIN / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--timeout",
        "30",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    if worker_class == "gthread":
        argv += ["--threads", str(threads)]
    # SIGINT: gunicorn's quick shutdown (SIGTERM would wait for keep-alive connections).
    return stack.start(name, argv, env=env, stop_signal=signal.SIGINT)


def wait_http_ok(service, url, timeout=30):
    def ok():
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
            return resp.status == 200

    wait_until(ok, timeout, f"{service.name} at {url}", interval=0.1, service=service)


def start_writer(stack, name, env):
    """One order writer, `manage.py seckill_writer` exactly as the Procfile runs it (named `name` in
    the consumer group). SIGTERM: it finishes the batch in hand and exits."""
    argv = [str(VENV_BIN / "python"), "manage.py", "seckill_writer", "--consumer", name]
    return stack.start(name, argv, env=env, stop_signal=signal.SIGTERM)


def http_error_status(exc):
    return exc.code if isinstance(exc, urllib.error.HTTPError) else None

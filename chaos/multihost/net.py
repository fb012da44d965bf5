"""Hosts on one machine: a network namespace per host, each on a veth pair into one bridge.

    root namespace: bridge fsbr0 10.77.0.1 (the "service LAN"): the Redis Cluster nodes
    bind this address; socat forwards its ports 3306 and 5672 to the machine's MariaDB
    and RabbitMQ, which listen on loopback only (so their own configuration is not
    touched, and RabbitMQ's guest account, allowed from loopback only, still works).
    fs-web1..3  10.77.0.11-13   gunicorn
    fs-wr1..2   10.77.0.21-22   order writers (fs-wr2 also Celery worker and beat)

Cutting a host off is `ip link set <its veth> down` on the bridge side: its processes
keep running and everything they send is dropped, as when a host's switch port dies.
Everything here is removed by `down()`, also what an interrupted run left behind
(namespaces and links are named fs-*/fsv-*/fsbr0, nothing else is touched).
"""

import contextlib
import os
import shutil
import signal
import subprocess

PREFIX = os.environ.get("MULTIHOST_SUBNET", "10.77.0")  # a /24 this machine does not use
HUB = f"{PREFIX}.1"
BRIDGE = "fsbr0"
HOSTS = {"web1": 11, "web2": 12, "web3": 13, "wr1": 21, "wr2": 22}
FORWARDED = {3306: ("127.0.0.1", 3306), 5672: ("127.0.0.1", 5672)}  # MariaDB, RabbitMQ


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)  # noqa: S603, S607


def address(host):
    return f"{PREFIX}.{HOSTS[host]}"


def namespace(host):
    return f"fs-{host}"


def veth(host):
    return f"fsv-{host}"


def in_host(host, argv):
    """argv run inside the host's namespace (`ip netns exec` execs it: same pid, signals reach it)."""
    return ["ip", "netns", "exec", namespace(host), *argv]


def check_can_build():
    problems = []
    if os.geteuid() != 0:
        problems.append("network namespaces need root (CAP_NET_ADMIN): run make cluster-test as root")
    for tool, package in (("ip", "iproute2"), ("socat", "socat"), ("redis-server", "redis-server")):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing: apt-get install {package}")
    if not problems and ip("-4", "addr", "show", check=False).stdout.count(f" {PREFIX}.") > 0 and not _ours():
        problems.append(f"{PREFIX}.0/24 is in use on this machine: set MULTIHOST_SUBNET to another /24 prefix")
    return problems


def _ours():
    return ip("link", "show", BRIDGE, check=False).returncode == 0


class Network:
    def __init__(self):
        self.forwarders = []

    def up(self):
        self.down()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{HUB}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for host in HOSTS:
            ns = namespace(host)
            ip("netns", "add", ns)
            ip("link", "add", veth(host), "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", veth(host), "master", BRIDGE, "up")
            ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        for port, (to_host, to_port) in FORWARDED.items():
            self.forwarders.append(
                subprocess.Popen(  # noqa: S603
                    [
                        shutil.which("socat"),
                        f"TCP-LISTEN:{port},bind={HUB},fork,reuseaddr,backlog=512",
                        f"TCP:{to_host}:{to_port},nodelay",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def cut(self, host):
        ip("link", "set", veth(host), "down")

    def restore(self, host):
        ip("link", "set", veth(host), "up")

    def down(self):
        for proc in self.forwarders:  # socat forks a child per connection: end the whole group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.forwarders = []
        for host in HOSTS:
            ip("netns", "del", namespace(host), check=False)  # takes its end of the veth pair, and so both
            ip("link", "del", veth(host), check=False)
        ip("link", "del", BRIDGE, check=False)

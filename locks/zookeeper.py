"""A ZooKeeper lock: the ephemeral-sequential recipe on kazoo's client, fenced by the node's czxid.

Each acquisition creates an ephemeral, sequential znode under the lock's directory:
    {root}/{quoted name}/{random id}-lock-0000000042
The holder is the node with the lowest sequence number. A waiter watches only the node
just ahead of it (its predecessor), so a release wakes one waiter, never the herd, and
waiters are served in the order they arrived. Nobody polls.

Why it is safe: ZooKeeper decides the order (sequence numbers come from the server, in
one linearizable log), and an ephemeral node lives exactly as long as the session that
made it. The session is this process's lease: kazoo pings every third of the session
timeout, so the lock lasts as long as the process runs and reaches the server, and a
killed or partitioned holder's node is deleted by the server once the session times out.
The fencing token is the node's czxid, the zxid of the transaction that created it:
zxids grow across the whole ensemble and across leader changes, so a later acquisition
of any name always has a higher token, without any counter of our own.

The random id in the node name lets an acquisition whose create reply was lost find
and delete the node it may have made; otherwise that node would block the lock for as
long as our session lives.
"""

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from urllib.parse import quote

from django.conf import settings
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, KazooException, NoNodeError, SessionExpiredError
from kazoo.handlers.threading import KazooTimeoutError

from locks.base import Lock, check_seconds
from locks.errors import LockError, LockNotOwnedError, LockUnavailable
from locks.metrics import lock_metrics

log = logging.getLogger(__name__)

SEQUENCE_DIGITS = 10
# What a call to the server may raise: kazoo's own errors, or our bound on the wait.
ZK_ERRORS = (KazooException, KazooTimeoutError)
CONNECT_TIMEOUT_S = 5.0


def _sequence(node):
    return int(node[-SEQUENCE_DIGITS:])


class _Session:
    """One kazoo client (one ZooKeeper session) per process, server list and session timeout.

    Its listener tells every lock held through it when the session is suspended (the
    connection dropped: we can no longer know whether our nodes survive) or lost (the
    server expired it: they are gone), and wakes every waiter so none sleeps on a watch
    that will never fire.
    """

    _all = {}
    _all_guard = threading.Lock()

    @classmethod
    def get(cls, hosts, timeout):
        key = (os.getpid(), hosts, timeout)  # a forked child needs a client of its own
        with cls._all_guard:
            session = cls._all.get(key)
            if session is None or session.closed:
                session = cls._all[key] = cls(hosts, timeout)
        session.ensure_started()
        return session

    def __init__(self, hosts, timeout):
        self.hosts, self.timeout = hosts, timeout
        self.client = KazooClient(
            hosts=hosts, timeout=timeout, connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 1.0}
        )
        self.client.add_listener(self._on_state)
        self.closed = False
        self._guard = threading.Lock()
        self._held = set()
        self._waiting = set()
        self._orphans = []
        self._started = False
        self._connected = threading.Event()

    def ensure_started(self):
        with self._guard:
            if self._started:
                return
            try:
                self.client.start(timeout=min(CONNECT_TIMEOUT_S, max(self.timeout, 1.0)))
            except KazooTimeoutError as exc:
                self.closed = True
                raise LockUnavailable(f"ZooKeeper at {self.hosts} did not answer: {exc}") from exc
            self._started = True
            self._connected.set()

    @property
    def session_id(self):
        # client_id is None while reconnecting; the id itself stays until the session expires.
        return self.client._session_id

    @property
    def connected(self):
        return self.client.state == KazooState.CONNECTED

    def call(self, method, *args, **kwargs):
        """client.<method>_async(...) bounded by the session timeout, failing at once when disconnected.

        kazoo's own blocking calls queue a request made while it reconnects and wait for
        the connection without a bound; a lock must give a clear error instead.
        """
        if not self.connected:
            raise ConnectionLoss("not connected to ZooKeeper")
        return getattr(self.client, f"{method}_async")(*args, **kwargs).get(timeout=self.timeout)

    def await_connection(self, timeout):
        """Wait (at most `timeout` s) for kazoo to be connected again; True if it is."""
        return self._connected.wait(timeout) and self.connected

    def hold(self, lock):
        with self._guard:
            self._held.add(lock)

    def drop(self, lock):
        with self._guard:
            self._held.discard(lock)

    @contextlib.contextmanager
    def waiting(self, event):
        with self._guard:
            self._waiting.add(event)
        try:
            yield
        finally:
            with self._guard:
                self._waiting.discard(event)

    def forget_later(self, directory, marker):
        """Delete our node with `marker` in its name once the connection is back.

        For a create whose reply was lost, and a release that could not reach the
        server: if the session survives, the node would otherwise outlive the lock.
        """
        with self._guard:
            self._orphans.append((directory, marker))
        if self.client.state == KazooState.CONNECTED:
            threading.Thread(target=self._delete_orphans, daemon=True).start()

    def _delete_orphans(self):
        with self._guard:
            orphans, self._orphans = self._orphans, []
        for directory, marker in orphans:
            try:
                for child in self.call("get_children", directory):
                    if child.startswith(marker):
                        self.call("delete", f"{directory}/{child}")
            except NoNodeError:
                continue
            except ZK_ERRORS:
                with self._guard:
                    self._orphans.append((directory, marker))

    def _on_state(self, state):
        # Runs on kazoo's connection thread, which must not block: the locks' callbacks
        # run on a thread of their own.
        with self._guard:
            held, waiting = list(self._held), list(self._waiting)
            has_orphans = bool(self._orphans)
        for event in waiting:
            event.set()
        if state == KazooState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if state == KazooState.CONNECTED:
            if has_orphans:
                threading.Thread(target=self._delete_orphans, daemon=True).start()
            return
        reason = "the ZooKeeper session expired" if state == KazooState.LOST else "the ZooKeeper connection dropped"
        for lock in held:
            threading.Thread(target=lock._report_lost, args=(reason, lock._node), daemon=True).start()


class ZooKeeperLock(Lock):
    """A lock on an ephemeral sequential znode; `ttl` is the ZooKeeper session timeout.

    The lease is the session's, not the lock's: it never runs out while this process
    runs and reaches the server (there is nothing to renew, so auto_renew is accepted
    and always on), and it ends `ttl` seconds after the server last heard from the
    process. The server clamps `ttl` to its min/maxSessionTimeout (2 and 20 ticks,
    4-40 s with Debian's tickTime of 2 s). When the connection drops, the lock is
    reported lost at once (WARNING, lost_total, on_lost from a thread of its own),
    because from then on nobody can tell us whether our node survives.
    """

    backend = "zookeeper"
    issues_fencing_tokens = True

    def __init__(
        self,
        name,
        ttl=10.0,
        *,
        hosts=None,
        root=None,
        on_lost=None,
        auto_renew=True,
        blocking=True,
        blocking_timeout=None,
        metric_label=None,
    ):
        super().__init__(name, blocking=blocking, blocking_timeout=blocking_timeout, metric_label=metric_label)
        self.ttl = check_seconds(ttl, "ttl")
        self._check_fence_resource()
        self.hosts = hosts or settings.ZOOKEEPER_HOSTS
        root = (root or getattr(settings, "LOCKS_ZOOKEEPER_ROOT", "/flashshop/locks")).rstrip("/")
        self.directory = f"{root}/{quote(name, safe=':@').replace('.', '%2E')}"
        self.on_lost = on_lost
        self._session = None
        self._node = None
        self._node_session = None
        self._marker = None
        self._fence = None
        self._lost = False
        self._lost_guard = threading.Lock()
        self._acquired_at = None

    @property
    def fencing_token(self):
        """The czxid of our lock node: higher than that of every earlier acquisition of this name."""
        return self._fence

    @property
    def lost(self):
        return self._lost

    def acquire(self, blocking=None, timeout=None):
        if self._node is not None:
            raise LockError(f"{self.name!r} is already held by this lock object")
        blocking, timeout = self.wait_policy(blocking, timeout)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        session = self._session = _Session.get(self.hosts, self.ttl)
        marker = secrets.token_hex(8)
        identity = f"{socket.gethostname()}:{os.getpid()}:{self.name}".encode()
        try:
            path, stat = session.call(
                "create",
                f"{self.directory}/{marker}-lock-",
                identity,
                ephemeral=True,
                sequence=True,
                makepath=True,
                include_data=True,
            )
        except (ConnectionLoss, KazooTimeoutError) as exc:
            session.forget_later(self.directory, marker)
            raise LockUnavailable(f"ZooKeeper did not confirm the lock node of {self.name!r}: {exc!r}") from exc
        except ZK_ERRORS as exc:
            raise LockUnavailable(f"ZooKeeper refused the lock node of {self.name!r}: {exc!r}") from exc
        node_session = session.session_id
        self._marker = marker
        try:
            got = self._wait_for_turn(session, path, blocking, deadline)
        except BaseException:
            self._delete_quietly(session, path, self.directory, marker)
            raise
        if not got:
            self._delete_quietly(session, path, self.directory, marker)
            return False
        self._node, self._node_session, self._fence = path, node_session, stat.czxid
        self._lost = False
        self._acquired_at = time.monotonic()
        session.hold(self)
        lock_metrics.acquired.labels(**self._labels).inc()
        lock_metrics.wait_seconds.labels(**self._labels).observe(self._acquired_at - started)
        return True

    def _wait_for_turn(self, session, path, blocking, deadline):
        """Wait until our node is the lowest; False when the wait is over first.

        Each round reads the children once and, if we are not first, watches the node
        just ahead of ours. That node's deletion (its holder released, gave up or died)
        fires the watch; a change of session state wakes us too, and the next read then
        fails fast with ConnectionLoss instead of waiting on a watch that cannot fire.
        """
        mine = _sequence(path)
        contended = False
        while True:
            try:
                children = session.call("get_children", self.directory)
            except (ConnectionLoss, SessionExpiredError, KazooTimeoutError) as exc:
                raise LockUnavailable(f"ZooKeeper connection lost while acquiring {self.name!r}: {exc!r}") from exc
            ahead = [child for child in children if _sequence(child) < mine]
            if not ahead:
                return True
            if not contended:
                contended = True
                lock_metrics.contended.labels(**self._labels).inc()
            remaining = None if deadline is None else deadline - time.monotonic()
            if not blocking or (remaining is not None and remaining <= 0):
                if blocking:
                    lock_metrics.timed_out.labels(**self._labels).inc()
                return False
            predecessor = max(ahead, key=_sequence)
            woken = threading.Event()
            with session.waiting(woken):
                try:
                    ahead_path = f"{self.directory}/{predecessor}"
                    exists = session.call("exists", ahead_path, watch=lambda _e, w=woken: w.set())
                except (ConnectionLoss, SessionExpiredError, KazooTimeoutError) as exc:
                    raise LockUnavailable(f"ZooKeeper connection lost while acquiring {self.name!r}") from exc
                if exists is not None:
                    woken.wait(remaining)
            if session.client.state != KazooState.CONNECTED:
                raise LockUnavailable(f"ZooKeeper connection lost while waiting for {self.name!r}")

    def _delete_quietly(self, session, path, directory, marker):
        try:
            session.call("delete", path)
        except NoNodeError:
            pass
        except ZK_ERRORS:
            session.forget_later(directory, marker)

    def release(self):
        """Delete our node. LockNotOwnedError if the session that made it expired (the node is gone).

        A connection lost on the way (the server was away, or this process was paused)
        is waited out for at most the session timeout: kazoo then either resumes our
        session, and we delete the node, or learns that it expired, and the node is gone.
        """
        path, session = self._node, self._session
        if path is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        self._node = None
        session.drop(self)
        lock_metrics.hold_seconds.labels(**self._labels).observe(time.monotonic() - self._acquired_at)
        deadline = time.monotonic() + self.ttl
        while True:
            if session.session_id != self._node_session:
                self._report_lost("its ZooKeeper session expired", path)
                raise LockNotOwnedError(f"{self.name!r} was lost: the session that held it expired")
            try:
                session.call("delete", path)
                return
            except (NoNodeError, SessionExpiredError) as exc:
                self._report_lost("its node was gone at release", path)
                raise LockNotOwnedError(f"{self.name!r} was lost before release") from exc
            except (ConnectionLoss, KazooTimeoutError) as exc:
                left = deadline - time.monotonic()
                if left > 0 and session.await_connection(left):
                    continue
                # Either the session expires and the server deletes the node, or the
                # connection comes back with the session and forget_later deletes it.
                session.forget_later(self.directory, self._marker)
                self._report_lost("ZooKeeper unreachable at release", path)
                raise LockUnavailable(f"ZooKeeper unreachable while releasing {self.name!r}: {exc!r}") from exc

    def extend(self, ttl=None):
        """Confirm the lock is still ours. The session keeps it: there is no lease of its own to move."""
        if ttl is not None:
            check_seconds(ttl, "ttl")
        if not self.owned():
            raise LockNotOwnedError(f"{self.name!r} is no longer ours")

    def owned(self):
        if self._node is None or self._session.session_id != self._node_session:
            return False
        try:
            return self._session.call("exists", self._node) is not None
        except ZK_ERRORS:
            return False

    def locked(self):
        session = _Session.get(self.hosts, self.ttl)
        try:
            return bool(session.call("get_children", self.directory))
        except NoNodeError:
            return False
        except ZK_ERRORS as exc:
            raise LockUnavailable(f"ZooKeeper did not answer for {self.name!r}: {exc!r}") from exc

    def _report_lost(self, reason, node=None):
        """Count, log and call back once per acquisition; a late session event for an earlier one is dropped."""
        with self._lost_guard:
            if self._lost or (node is not None and node != self._node):
                return
            self._lost = True
        self._announce_lost(reason)

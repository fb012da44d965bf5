"""An etcd lock: one key per acquisition on a lease of its own, ordered by create revision.

This is etcd's own mutex recipe (clientv3/concurrency), on the v3 JSON gateway through
etcd3gw, the maintained gateway client (OpenStack's; plain HTTP, no gRPC stubs to
keep in step with the server). Keys of the lock named N:
    {prefix}N/{lease id}     one per holder or waiter, attached to its lease
Acquiring grants a lease and, in one transaction, writes our key and reads the key
with the lowest create revision: if that is ours, we hold the lock. Otherwise we watch
the key just ahead of ours (the highest create revision below ours) for its deletion,
so one release wakes one waiter, in arrival order, and nobody polls.

Why it is safe: create revisions come from etcd's Raft log, so the order is the same
for every client, and a key on a lease is deleted by the server when the lease ends,
so a holder that dies (or cannot reach a quorum) frees the lock `ttl` after its last
keep-alive. The fencing token is our key's create revision: the store's revision only
ever grows, so a later acquisition always has a higher token.

Leases count whole seconds: `ttl` is rounded up to the next second, at least 1.
"""

import base64
import contextlib
import json
import logging
import math
import os
import threading
import time

import requests
from django.conf import settings
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception
from etcd3gw.watch import Watcher

from locks.base import Lock, check_seconds
from locks.errors import LockError, LockNotOwnedError, LockUnavailable
from locks.metrics import lock_metrics

log = logging.getLogger(__name__)

UNREACHABLE = (ConnectionFailedError, ConnectionTimeoutError, requests.RequestException)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix):
    """The range end that covers every key starting with `prefix` (etcd's "prefix" range)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


_clients = {}
_clients_guard = threading.Lock()


def etcd_client(url, timeout):
    """One gateway client per process, URL and request timeout; its HTTP pool is shared by threads."""
    key = (os.getpid(), url, timeout)
    with _clients_guard:
        client = _clients.get(key)
        if client is None:
            scheme, _, address = url.partition("://")
            host, _, port = address.rstrip("/").rpartition(":")
            session = requests.Session()
            session.mount(f"{scheme}://", requests.adapters.HTTPAdapter(pool_maxsize=64))
            client = _clients[key] = Etcd3Client(
                host=host, port=int(port), protocol=scheme, timeout=timeout, api_path="/v3/", session=session
            )
    return client


class EtcdLock(Lock):
    """A lease-based etcd lock; `fencing_token` is the create revision of our key.

    auto_renew=True keeps the lease alive from a watchdog thread (every ttl/3). When a
    keep-alive finds the lease gone, or etcd stays unreachable until the lease could
    end, the lock is reported lost: WARNING, lost_total, and on_lost(lock) from the
    watchdog thread. A waiter keeps its own lease alive while it waits, so a long wait
    never loses its place in the queue.
    """

    backend = "etcd"
    issues_fencing_tokens = True

    def __init__(
        self,
        name,
        ttl=10.0,
        *,
        url=None,
        prefix=None,
        auto_renew=False,
        on_lost=None,
        blocking=True,
        blocking_timeout=None,
        request_timeout=None,
        metric_label=None,
    ):
        super().__init__(name, blocking=blocking, blocking_timeout=blocking_timeout, metric_label=metric_label)
        self.ttl = check_seconds(ttl, "ttl")
        self._check_fence_resource()
        self.url = url or settings.ETCD_URL
        self.prefix = f"{prefix or getattr(settings, 'LOCKS_ETCD_PREFIX', 'flashshop/locks/')}{name}/"
        self.auto_renew = auto_renew
        self.on_lost = on_lost
        self.request_timeout = request_timeout or getattr(settings, "LOCKS_ETCD_TIMEOUT", 1.0)
        self.client = etcd_client(self.url, self.request_timeout)
        self._lease = None
        self._key = None
        self._fence = None
        self._lost = False
        self._lost_guard = threading.Lock()
        self._acquired_at = None
        self._lease_end = None
        self._watchdog_stop = None

    @property
    def fencing_token(self):
        return self._fence

    @property
    def lost(self):
        return self._lost

    # -- calls ------------------------------------------------------------------------

    def _post(self, path, body):
        try:
            return self.client.post(self.client.get_url(path), data=json.dumps(body))
        except UNREACHABLE as exc:
            raise LockUnavailable(f"etcd at {self.url} did not answer for lock {self.name!r}: {exc}") from exc

    def _grant(self, ttl):
        lease_ttl = max(1, math.ceil(ttl))
        return int(self._post("/lease/grant", {"TTL": lease_ttl, "ID": 0})["ID"]), lease_ttl

    def _keep_alive(self, lease):
        """The lease's new TTL in seconds, or -1 if it has ended already."""
        answer = self._post("/lease/keepalive", {"ID": lease})
        return int(answer.get("result", {}).get("TTL", -1))

    def _revoke(self, lease):
        """Revoke (deleting our key with it); False if the lease had ended already."""
        try:
            self._post("/kv/lease/revoke", {"ID": lease})
        except Etcd3Exception as exc:
            if "not found" in " ".join(map(str, exc.args)).lower():
                return False
            raise
        return True

    def _ahead_of(self, revision):
        """The key just ahead of ours (highest create revision below `revision`), and the store revision."""
        answer = self._post(
            "/kv/range",
            {
                "key": _b64(self.prefix),
                "range_end": _prefix_end(self.prefix),
                "max_create_revision": revision - 1,
                "sort_order": "DESCEND",
                "sort_target": "CREATE",
                "limit": 1,
                "keys_only": True,
            },
        )
        kvs = answer.get("kvs") or []
        return (kvs[0]["key"] if kvs else None), int(answer["header"]["revision"])

    # -- acquire ----------------------------------------------------------------------

    def acquire(self, blocking=None, timeout=None):
        if self._key is not None:
            raise LockError(f"{self.name!r} is already held by this lock object")
        blocking, timeout = self.wait_policy(blocking, timeout)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        sent = time.monotonic()
        lease, lease_ttl = self._grant(self.ttl)
        key = f"{self.prefix}{lease:x}"
        try:
            answer = self._post(
                "/kv/txn",
                {
                    "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}],
                    "success": [
                        {"request_put": {"key": _b64(key), "value": _b64(str(os.getpid())), "lease": lease}},
                        {
                            "request_range": {
                                "key": _b64(self.prefix),
                                "range_end": _prefix_end(self.prefix),
                                "sort_order": "ASCEND",
                                "sort_target": "CREATE",
                                "limit": 1,
                                "keys_only": True,
                            }
                        },
                    ],
                },
            )
            revision = int(answer["header"]["revision"])
            owner = answer["responses"][1]["response_range"]["kvs"][0]["key"]
            got = owner == _b64(key) or self._wait_for_turn(lease, lease_ttl, revision, blocking, deadline)
        except BaseException:
            with contextlib.suppress(LockError, Etcd3Exception):
                self._revoke(lease)  # our key goes with it; if etcd is away, the lease ends by itself
            raise
        if not got:
            with contextlib.suppress(LockError, Etcd3Exception):
                self._revoke(lease)
            return False
        self._lease, self._key, self._fence = lease, key, revision
        self._lease_ttl = lease_ttl
        self._lost = False
        self._acquired_at = time.monotonic()
        self._lease_end = sent + lease_ttl
        lock_metrics.acquired.labels(**self._labels).inc()
        lock_metrics.wait_seconds.labels(**self._labels).observe(self._acquired_at - started)
        if self.auto_renew:
            self._start_watchdog()
        return True

    def _wait_for_turn(self, lease, lease_ttl, revision, blocking, deadline):
        """Watch the key ahead of ours until none is left; False when the wait is over first.

        The watch starts at the revision of the read that found the key, so a deletion
        between that read and the watch is replayed, not missed. Each round is bounded
        by a third of our lease, after which we keep our own lease alive and look again.
        """
        lock_metrics.contended.labels(**self._labels).inc()
        while True:
            ahead, seen_at = self._ahead_of(revision)
            if ahead is None:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if not blocking or (remaining is not None and remaining <= 0):
                if blocking:
                    lock_metrics.timed_out.labels(**self._labels).inc()
                return False
            deleted = threading.Event()

            def on_event(event, deleted=deleted):
                if event.get("type") == "DELETE":
                    deleted.set()

            try:
                watcher = Watcher(
                    self.client, base64.b64decode(ahead), on_event, start_revision=seen_at + 1, filters=["NOPUT"]
                )
            except UNREACHABLE as exc:
                raise LockUnavailable(f"etcd at {self.url} did not answer for lock {self.name!r}: {exc}") from exc
            try:
                round_s = lease_ttl / 3 if remaining is None else min(remaining, lease_ttl / 3)
                deleted.wait(round_s)
            finally:
                watcher.stop()
            if not deleted.is_set() and self._keep_alive(lease) <= 0:
                raise LockError(f"our place in the queue of {self.name!r} expired while waiting")

    # -- release, extend --------------------------------------------------------------

    def release(self):
        """Revoke our lease, which deletes our key and so wakes the next waiter.

        LockNotOwnedError if the lease had ended already: another holder may have run.
        """
        lease = self._lease
        if lease is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        self._stop_watchdog()
        revoked = self._revoke(lease)
        lock_metrics.hold_seconds.labels(**self._labels).observe(time.monotonic() - self._acquired_at)
        self._lease = self._key = None
        if not revoked:
            self._report_lost("its lease ended before release", lease)
            raise LockNotOwnedError(f"{self.name!r} was lost before release: its etcd lease had ended")

    def extend(self, ttl=None):
        """Make the lease last `ttl` (default: the lock's ttl) from now, and the watchdog keep that.

        A lease's TTL is fixed when it is granted, so a different ttl moves our key to a
        new lease in one transaction that checks the key is still on the old one.
        """
        seconds = self.ttl if ttl is None else check_seconds(ttl, "ttl")
        lease = self._lease
        if lease is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        sent = time.monotonic()
        if max(1, math.ceil(seconds)) == self._lease_ttl:
            if self._keep_alive(lease) <= 0:
                self._report_lost("extend found its lease gone", lease)
                raise LockNotOwnedError(f"{self.name!r} is no longer ours")
        else:
            new_lease, new_ttl = self._grant(seconds)
            moved = self._post(
                "/kv/txn",
                {
                    "compare": [{"key": _b64(self._key), "target": "LEASE", "result": "EQUAL", "lease": lease}],
                    "success": [{"request_put": {"key": _b64(self._key), "ignore_value": True, "lease": new_lease}}],
                },
            ).get("succeeded", False)
            if not moved:
                self._revoke(new_lease)
                self._report_lost("extend found its key gone", lease)
                raise LockNotOwnedError(f"{self.name!r} is no longer ours")
            self._lease, self._lease_ttl = new_lease, new_ttl
            with contextlib.suppress(LockError, Etcd3Exception):
                self._revoke(lease)  # nothing is attached to it any more
        self._lease_end = sent + self._lease_ttl

    def owned(self):
        if self._key is None:
            return False
        answer = self._post("/kv/range", {"key": _b64(self._key), "keys_only": True})
        return bool(answer.get("kvs"))

    def locked(self):
        answer = self._post(
            "/kv/range", {"key": _b64(self.prefix), "range_end": _prefix_end(self.prefix), "count_only": True}
        )
        return int(answer.get("count", 0)) > 0

    # -- watchdog ---------------------------------------------------------------------

    def _start_watchdog(self):
        stop = threading.Event()
        self._watchdog_stop = stop
        threading.Thread(
            target=self._renew_until_stopped, args=(stop,), name=f"lock-watchdog:{self.name}", daemon=True
        ).start()

    def _stop_watchdog(self):
        if self._watchdog_stop is not None:
            self._watchdog_stop.set()
            self._watchdog_stop = None

    def _renew_until_stopped(self, stop):
        """Keep the current lease alive every ttl/3; give up when a retry could not end before the lease."""
        wait = self._lease_ttl / 3
        while not stop.wait(wait):
            interval = self._lease_ttl / 3  # extend() may have moved us to a lease of another length
            lease, sent = self._lease, time.monotonic()
            try:
                left = self._keep_alive(lease)
            except LockUnavailable as exc:
                if stop.is_set():
                    return
                if time.monotonic() + self.request_timeout + interval / 4 >= self._lease_end - interval / 2:
                    self._report_lost(f"etcd unreachable until the lease would end ({exc})", lease)
                    return
                wait = interval / 4
                continue
            if stop.is_set():
                return
            if left <= 0:
                self._report_lost("its lease had ended", lease)
                return
            self._lease_end = sent + left
            lock_metrics.renewed.labels(**self._labels).inc()
            wait = interval

    def _report_lost(self, reason, lease):
        with self._lost_guard:
            if self._lost or self._lease not in (lease, None):
                return
            self._lost = True
        self._announce_lost(reason)

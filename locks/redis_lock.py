"""A lease-based Redis lock that cannot delete another holder's lock, with fencing tokens.

Keys of the lock named N (one hash tag, so every script is valid on Redis Cluster):
    lock:{N}         the lock: holds the current holder's random token, with a TTL (the lease)
    lock:{N}:wake    a one-element list pushed on release; waiters block on it with BLPOP
    lock:{N}:fence   the fencing counter, never expires
With fence_scope=S (many short-lived locks sharing one counter, e.g. one per customer of
a sale) the tag is S: lock:{S}:name:N, lock:{S}:wake:N, and the shared lock:{S}:fence.

Round trips on the uncontended path: one to acquire (lock_acquire.lua takes the lock and
issues the fencing token together) and one to release (lock_release.lua). A blocked
waiter costs one BLPOP per release or per lease, never a polling loop.
"""

import contextlib
import logging
import secrets
import threading
import time

from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_cluster import longest_call_s
from core.redis_cluster import socket_timeout as client_socket_timeout
from core.redis_errors import REDIS_ERRORS
from locks import scripts
from locks.base import FENCE_RESOURCE_MAX, Lock, check_seconds
from locks.errors import LockError, LockNotOwnedError, LockUnavailable, TokenNotIssuedError
from locks.fencing import seed_fence_counter
from locks.metrics import lock_metrics

log = logging.getLogger(__name__)

# How long a release's wake signal waits for a waiter that is between its failed attempt
# and its BLPOP. Longer only costs one spurious attempt; waiters never depend on it alone.
WAKE_SIGNAL_TTL_MS = 2000
# BLPOP must return before the client's socket timeout, or redis-py drops the connection
# while the server may still hand that connection the next wake signal.
BLOCKING_WAIT_SHARE_OF_SOCKET_TIMEOUT = 0.8
MIN_BLOCKING_WAIT_S = 0.01  # BLPOP reads 0 as "forever"
FENCE_SEED_ATTEMPTS = 3


class RedisLockUnavailable(LockUnavailable, RedisConnectionError):
    """Redis did not answer; a redis ConnectionError too, so `except RedisError` still catches it."""


@contextlib.contextmanager
def _unavailable_as_lock_error(name):
    try:
        yield
    except RedisLockUnavailable:
        raise
    except REDIS_ERRORS as exc:
        raise RedisLockUnavailable(f"Redis did not answer for lock {name!r}: {exc!r}") from exc


class RedisLock(Lock):
    """`SET NX PX` with a random token per acquisition; release, extend and renewal compare it.

    The lock is an efficiency measure: it keeps concurrent workers from doing the same
    work, but a holder that stalls past its lease loses it without knowing. Writes that
    must not happen twice carry `fencing_token` to `fence_check`, or rely on database
    constraints and conditional UPDATEs (see docs/locks.md).

    auto_renew=True starts a watchdog thread for each acquisition that renews the lease
    every ttl/3 and stops on release. When a renewal finds the lock gone, or Redis stays
    unreachable until the lease could end, it marks the lock lost, logs a WARNING and
    calls `on_lost(lock)` from the watchdog thread. One renewal can block for the
    client's socket timeout times (1 + its retries); that must stay well under ttl/2
    for on_lost to come before the lease ends (django-redis here: 1 s, no retries).

    The first acquisition of a name (and the first after Redis lost its data) finds no
    fence counter in Redis. It takes the lock all the same and leaves the token
    pending: the first read of `fencing_token` then reserves a token epoch in the
    database (on a connection of its own), seeds the counter and takes a token, but only
    while the lock is still ours. So acquire() never waits on the database, and tokens
    are still issued in the order the lock was held. For many short-lived names, such as one lock per customer of a
    sale, pass fence_scope (e.g. the sale): the locks then share one counter and one
    reservation, and each lock's tokens still grow. fencing=False skips fencing
    altogether; `fencing_token` is then None.
    """

    backend = "redis"
    issues_fencing_tokens = True

    def __init__(
        self,
        name,
        ttl=10.0,
        *,
        auto_renew=False,
        client=None,
        on_lost=None,
        blocking=True,
        blocking_timeout=None,
        fencing=True,
        fence_scope=None,
        metric_label=None,
        using="default",
    ):
        super().__init__(name, blocking=blocking, blocking_timeout=blocking_timeout, metric_label=metric_label)
        for part in (name, fence_scope or ""):
            if "{" in part or "}" in part:
                raise ValueError("lock names and fence scopes cannot contain braces: the hash tag is built from them")
        # Both are FencingToken.resource values: the scope for the epoch reservation, the
        # name for fence_check (docs/locks.md, "Fencing").
        for what, part in (("lock name", name), ("fence scope", fence_scope or "")):
            if fencing and len(part) > FENCE_RESOURCE_MAX:
                raise ValueError(f"a {what} is a FencingToken.resource: at most {FENCE_RESOURCE_MAX} characters")
        self.ttl = check_seconds(ttl, "ttl")
        self.auto_renew = auto_renew
        self.on_lost = on_lost
        self.fencing = fencing
        self.fence_scope = fence_scope
        self.using = using
        self.client = client if client is not None else get_redis_connection("default")
        if fence_scope is None:
            self.key, self.wake_key = f"lock:{{{name}}}", f"lock:{{{name}}}:wake"
        else:
            self.key, self.wake_key = f"lock:{{{fence_scope}}}:name:{name}", f"lock:{{{fence_scope}}}:wake:{name}"
        self.fence_key = f"lock:{{{fence_scope or name}}}:fence"
        self._ttl_ms = max(1, round(self.ttl * 1000))
        self._renew_s = self.ttl  # the lease the watchdog renews to: ttl, or what extend() last asked
        self._token = None
        self._fence_pending = False
        self._fence = None
        self._lost = False
        self._lost_guard = threading.Lock()
        self._release_unconfirmed = False
        self._acquired_at = None
        self._lease_end = None
        self._watchdog_stop = None
        # Either kind of client: a RedisCluster has no connection_pool (core/redis_cluster.py).
        socket_timeout = client_socket_timeout(self.client)
        self._renewal_budget_s = longest_call_s(self.client)
        self._blocking_wait_cap_s = socket_timeout * BLOCKING_WAIT_SHARE_OF_SOCKET_TIMEOUT if socket_timeout else None

    # -- public API -------------------------------------------------------------------

    @property
    def fence_resource(self):
        return self.name  # resources of Redis locks predate the other backends: no prefix

    @property
    def fencing_token(self):
        """Token of the latest acquisition (kept after release, for the write that follows).

        Issued by the acquire script, or, when Redis had no fence counter, on this first
        read: that seeds the counter from the database and raises TokenNotIssuedError
        (a StaleTokenError and a LockNotOwnedError) if the lock is no longer ours, since
        a token issued then could be out of order.
        """
        if self._fence_pending:
            self._fence = self._issue_pending_token()
            self._fence_pending = False
        return self._fence

    @property
    def lost(self):
        """True once the watchdog or a release found that the lease ran out while held."""
        return self._lost

    def acquire(self, blocking=None, timeout=None):
        if self._token is not None:
            raise LockError(f"{self.name!r} is already held by this lock object")
        blocking, timeout = self.wait_policy(blocking, timeout)
        token = secrets.token_hex(16)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        contended = False
        while True:
            sent = time.monotonic()
            with _unavailable_as_lock_error(self.name):
                status, value = scripts.ACQUIRE(
                    self.client, [self.key, self.fence_key], [token, self._ttl_ms, "1" if self.fencing else "0"]
                )
            if status != 0:
                break
            if not contended:
                contended = True
                lock_metrics.contended.labels(**self._labels).inc()
            if not blocking:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                lock_metrics.timed_out.labels(**self._labels).inc()
                return False
            self._wait_for_release(value, remaining)
        self._token = token
        self._fence = value if self.fencing and status == 1 else None
        self._fence_pending = self.fencing and status == 2
        self._renew_s = self.ttl
        self._lost = False
        self._release_unconfirmed = False
        self._acquired_at = time.monotonic()
        # Counted from before the call: the server started the lease later than that, so
        # our idea of when it ends is never later than the real end.
        self._lease_end = sent + self.ttl
        lock_metrics.acquired.labels(**self._labels).inc()
        lock_metrics.wait_seconds.labels(**self._labels).observe(self._acquired_at - started)
        if self.auto_renew:
            self._start_watchdog(token)
        return True

    def release(self):
        """Delete the lock if it still carries our token, and wake the next waiter.

        Calling release again after one whose reply was lost (it raised a RedisError) is
        safe: it is a no-op if the lock is gone and raises LockNotOwnedError if somebody
        else holds it now, whose key it leaves alone. Release after a confirmed release
        raises LockNotOwnedError without sending anything.
        """
        token = self._token
        if token is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        self._stop_watchdog()
        try:
            with _unavailable_as_lock_error(self.name):
                result = scripts.RELEASE(self.client, [self.key, self.wake_key], [token, WAKE_SIGNAL_TTL_MS])
        except REDIS_ERRORS:
            self._release_unconfirmed = True
            raise
        earlier_release_may_have_landed = self._release_unconfirmed
        lock_metrics.hold_seconds.labels(**self._labels).observe(time.monotonic() - self._acquired_at)
        self._release_unconfirmed = False
        held_to_the_end = result == 1 or (result == 0 and earlier_release_may_have_landed)
        if not held_to_the_end:
            self._report_lost("the lease ran out before release" if result == 0 else "another holder has it now", token)
        self._token = None
        if not held_to_the_end:
            raise LockNotOwnedError(f"{self.name!r} was lost before release; the lock now belongs to nobody or another")

    def extend(self, ttl=None):
        """Set the remaining lease to `ttl` seconds (default: the lock's ttl) if the lock is still ours.

        The watchdog renews to this lease from now on, so it never undoes a longer one.
        """
        seconds = self.ttl if ttl is None else check_seconds(ttl, "ttl")
        token = self._token
        if token is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        sent = time.monotonic()
        with _unavailable_as_lock_error(self.name):
            extended = scripts.EXTEND(self.client, [self.key], [token, max(1, round(seconds * 1000))])
        if extended != 1:
            self._report_lost("extend found the lock gone", token)
            raise LockNotOwnedError(f"{self.name!r} is no longer ours")
        self._renew_s = seconds
        self._lease_end = sent + seconds

    def reacquire(self):
        """Restart the full lease of a lock we still hold (redis-py's name for extend(ttl))."""
        self.extend(self.ttl)

    def locked(self):
        with _unavailable_as_lock_error(self.name):
            return bool(self.client.exists(self.key))

    def owned(self):
        """Whether the lock still carries our token (one round trip)."""
        token = self._token
        if token is None:
            return False
        holder = self.client.get(self.key)
        return holder is not None and (holder.decode() if isinstance(holder, bytes) else holder) == token

    # -- acquisition ------------------------------------------------------------------

    def _issue_pending_token(self):
        """A token for the lock we hold, seeding the fence counter first if Redis has none.

        The issue script hands out a token only while the lock key still holds our
        token, so a token taken late is still higher than every earlier holder's and
        lower than every later one's.
        """
        token = self._token
        if token is None:
            raise TokenNotIssuedError(self.name)
        for _ in range(FENCE_SEED_ATTEMPTS):
            with _unavailable_as_lock_error(self.name):
                status, value = scripts.FENCE_ISSUE(self.client, [self.key, self.fence_key], [token])
            if status == 1:
                return value
            if status == 0:
                self._report_lost("its lease ran out before a fencing token was issued", token)
                raise TokenNotIssuedError(self.name)
            self._seed_fence()
        raise LockError(f"could not seed the fencing counter of {self.name!r}")

    def _seed_fence(self):
        """Start the missing fence counter above every token ever issued for this name (or scope).

        See fencing.seed_fence_counter: the epoch is reserved in the database before
        the counter moves, and concurrent seeders take turns.
        """
        floor = seed_fence_counter(
            self.fence_scope or self.name,
            still_missing=lambda: not self.client.exists(self.fence_key),
            seed=lambda floor: scripts.FENCE_SEED(self.client, [self.fence_key], [floor]),
            using=self.using,
        )
        if floor is not None:
            log.info("fencing counter of lock %r seeded at %d", self.name, floor)

    def _wait_for_release(self, holder_pttl_ms, remaining_s):
        """Block until a release signal, or until the holder's lease would have run out.

        The lease bound matters: a holder that crashed never signals, and its key just
        expires. Redis serves BLPOP waiters first come, first served, and a release
        pushes one signal, so releases wake waiters one at a time in arrival order.
        """
        if holder_pttl_ms == -2:
            return  # the holder's key vanished between our calls: try again at once
        wait_s = holder_pttl_ms / 1000 if holder_pttl_ms > 0 else self.ttl
        if remaining_s is not None:
            wait_s = min(wait_s, remaining_s)
        if self._blocking_wait_cap_s is not None:
            wait_s = min(wait_s, self._blocking_wait_cap_s)
        # A slow reply is no reason to fail: the next attempt asks the lock itself.
        with contextlib.suppress(RedisTimeoutError):
            self.client.blpop([self.wake_key], timeout=max(wait_s, MIN_BLOCKING_WAIT_S))

    # -- watchdog ---------------------------------------------------------------------

    def _start_watchdog(self, token):
        stop = threading.Event()
        self._watchdog_stop = stop
        threading.Thread(
            target=self._renew_until_stopped, args=(token, stop), name=f"lock-watchdog:{self.name}", daemon=True
        ).start()

    def _stop_watchdog(self):
        # Set before the release script runs, so a renewal that races the release and
        # finds the key gone is read as "released", not as "lost".
        if self._watchdog_stop is not None:
            self._watchdog_stop.set()
            self._watchdog_stop = None

    def _renew_until_stopped(self, token, stop):
        """Renew every third of the lease last asked for; after a failure, retry while a retry can still land."""
        wait = self._renew_s / 3
        while not stop.wait(wait):
            seconds = self._renew_s  # ttl, or what extend() asked for since
            interval = seconds / 3
            sent = time.monotonic()
            try:
                renewed = scripts.EXTEND(self.client, [self.key], [token, max(1, round(seconds * 1000))])
            except REDIS_ERRORS as exc:
                if stop.is_set():
                    return
                # Give up while half an interval of the lease is left, so on_lost can still
                # stop the work before another holder may start.
                if time.monotonic() + self._renewal_budget_s + interval / 4 >= self._lease_end - interval / 2:
                    self._report_lost(f"Redis unreachable until the lease would end ({exc!r})", token)
                    return
                log.info("renewal of lock %r failed, retrying: %r", self.name, exc)
                wait = interval / 4
                continue
            if stop.is_set():
                return
            if renewed != 1:
                self._report_lost("its key expired or belongs to another holder", token)
                return
            self._lease_end = sent + seconds
            lock_metrics.renewed.labels(**self._labels).inc()
            wait = interval

    def _report_lost(self, reason, token):
        """Count, log and call back once per acquisition, and never for a later one."""
        with self._lost_guard:
            if self._lost or self._token != token:
                return
            self._lost = True
        self._announce_lost(reason)

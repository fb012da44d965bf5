"""RedLock: a lock held on a majority of N independent Redis servers, with no fencing token.

The algorithm of the redis.io lock page: take the same random token with SET NX PX on
each server in turn, each call bounded by a short socket timeout; the lock is ours if
a majority took it and the time that took, plus an allowance for clock drift, is still
less than the lease. The lease we may count on (the validity) is what is left. Every
failure releases on all servers, and release compares the token on each one, so no
holder deletes another's key (the same Lua scripts as RedisLock, locks/lua/).

Why it tolerates a server down: any two majorities share a server, and that server
refuses the second SET NX while the first holder's key lives on it.

What it does not do, and why there is no fencing token (Kleppmann, "How to do
distributed locking", and the redis.io page's own caveats): the servers do not agree
on anything, so no counter on them is a single sequence. An INCR on each of a
majority gives two holders numbers from different servers that need not be ordered
the way the holders were. Safety rests on timing instead: bounded network delay,
bounded pauses, and clocks that run at about the same rate (a server whose clock jumps
expires a key early). A server that restarts empty forgets the keys it had; the page
asks it to stay down for one lease first. `fencing_token` is therefore always None and
fence_check refuses it: use it only where a lost lock costs work, not correctness.
"""

import contextlib
import logging
import os
import random
import secrets
import threading
import time

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from locks import scripts
from locks.base import Lock, check_seconds
from locks.errors import LockError, LockNotOwnedError, LockUnavailable
from locks.metrics import lock_metrics

log = logging.getLogger(__name__)

CLOCK_DRIFT_FACTOR = 0.01  # of the lease, plus 2 ms, as the redis.io page suggests
CLOCK_DRIFT_FLOOR_S = 0.002
WAKE_SIGNAL_TTL_MS = 2000
SPLIT_RETRY_MAX_S = 0.05  # random pause after a split vote, so contenders stop colliding
WAIT_CLIENT_SOCKET_TIMEOUT_S = 5.0
BLOCKING_WAIT_CAP_S = 0.8 * WAIT_CLIENT_SOCKET_TIMEOUT_S

_clients = {}
_clients_guard = threading.Lock()


def redlock_clients(urls, socket_timeout):
    """(call client, wait client) per server URL, one pair per process; neither retries silently."""
    pairs = []
    for url in urls:
        key = (os.getpid(), url, socket_timeout)
        with _clients_guard:
            if key not in _clients:
                common = {"retry": Retry(NoBackoff(), 0), "socket_connect_timeout": socket_timeout}
                _clients[key] = (
                    redis.Redis.from_url(url, socket_timeout=socket_timeout, **common),
                    redis.Redis.from_url(url, socket_timeout=WAIT_CLIENT_SOCKET_TIMEOUT_S, **common),
                )
            pairs.append(_clients[key])
    return pairs


class RedLock(Lock):
    """A lock on a majority of independent Redis servers (at least three). No fencing token.

    `ttl` is the lease asked of each server; the lock's lease is ttl minus the time
    the acquisition took and a drift allowance. auto_renew=True renews on every server
    each ttl/3 and reports the lock lost (WARNING, lost_total, on_lost) once fewer than
    a majority renew, or when no renewal can land before the validity ends.
    """

    backend = "redlock"
    issues_fencing_tokens = False

    def __init__(
        self,
        name,
        ttl=10.0,
        *,
        urls=None,
        clients=None,
        auto_renew=False,
        on_lost=None,
        blocking=True,
        blocking_timeout=None,
        socket_timeout=None,
        metric_label=None,
    ):
        super().__init__(name, blocking=blocking, blocking_timeout=blocking_timeout, metric_label=metric_label)
        if "{" in name or "}" in name:
            raise ValueError("lock names cannot contain braces: the hash tag is built from them")
        self.ttl = check_seconds(ttl, "ttl")
        self.socket_timeout = socket_timeout or getattr(settings, "LOCKS_REDLOCK_SOCKET_TIMEOUT", 0.1)
        if clients is None:
            clients = redlock_clients(urls or settings.REDLOCK_URLS, self.socket_timeout)
        self.clients = [pair if isinstance(pair, tuple) else (pair, pair) for pair in clients]
        if len(self.clients) < 3:
            raise ValueError(f"RedLock needs at least 3 independent Redis servers, got {len(self.clients)}")
        self.quorum = len(self.clients) // 2 + 1
        self.auto_renew = auto_renew
        self.on_lost = on_lost
        self.key, self.wake_key = f"redlock:{{{name}}}", f"redlock:{{{name}}}:wake"
        self._unused_fence_key = f"redlock:{{{name}}}:fence"
        self._token = None
        self._lease_ttl = self.ttl
        self._lease_end = None
        self._lost = False
        self._lost_guard = threading.Lock()
        self._acquired_at = None
        self._watchdog_stop = None

    @property
    def fencing_token(self):
        """Always None: a majority of independent servers cannot issue ordered tokens (see the module)."""
        return None

    @property
    def lost(self):
        return self._lost

    @property
    def validity(self):
        """Seconds of lease we may still count on (0 when not held)."""
        return 0.0 if self._lease_end is None else max(0.0, self._lease_end - time.monotonic())

    def _drift(self, seconds):
        return seconds * CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_FLOOR_S

    def _on_each(self, call):
        """call(client) on every server in turn: (answers, errors), an answer None where the call failed."""
        answers, errors = [], 0
        for fast, _ in self.clients:
            try:
                answers.append(call(fast))
            except RedisError:
                answers.append(None)
                errors += 1
        return answers, errors

    def _too_few_answered(self, errors):
        return LockUnavailable(f"only {len(self.clients) - errors} of {len(self.clients)} RedLock servers answered")

    def _release_everywhere(self, token):
        return self._on_each(lambda c: scripts.RELEASE(c, [self.key, self.wake_key], [token, WAKE_SIGNAL_TTL_MS]))

    # -- acquire ----------------------------------------------------------------------

    def acquire(self, blocking=None, timeout=None):
        if self._token is not None:
            raise LockError(f"{self.name!r} is already held by this lock object")
        blocking, timeout = self.wait_policy(blocking, timeout)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        ttl_ms = max(1, round(self.ttl * 1000))
        contended = False
        while True:
            token = secrets.token_hex(16)
            sent = time.monotonic()
            answers, errors = self._on_each(
                lambda c, token=token: scripts.ACQUIRE(c, [self.key, self._unused_fence_key], [token, ttl_ms, "0"])
            )
            validity = self.ttl - (time.monotonic() - sent) - self._drift(self.ttl)
            taken = sum(1 for a in answers if a is not None and a[0] == 1)
            if taken >= self.quorum and validity > 0:
                break
            self._release_everywhere(token)
            if errors > len(self.clients) - self.quorum:
                raise self._too_few_answered(errors)
            if not contended:
                contended = True
                lock_metrics.contended.labels(**self._labels).inc()
            remaining = None if deadline is None else deadline - time.monotonic()
            if not blocking or (remaining is not None and remaining <= 0):
                if blocking:
                    lock_metrics.timed_out.labels(**self._labels).inc()
                return False
            self._wait(answers, remaining)
        self._token, self._lease_ttl = token, self.ttl
        self._lease_end = sent + validity
        self._lost = False
        self._acquired_at = time.monotonic()
        lock_metrics.acquired.labels(**self._labels).inc()
        lock_metrics.wait_seconds.labels(**self._labels).observe(self._acquired_at - started)
        if self.auto_renew:
            self._start_watchdog()
        return True

    def _wait(self, answers, remaining):
        """Block for a release signal on the first server that showed us a holder, at most its lease.

        Every waiter picks the same server (the first in the list that is up and held),
        and a release pushes one signal per server, so a release wakes about one
        waiter. With no holder in sight (a split vote between contenders) we pause a
        random few milliseconds instead, which is what breaks the tie.
        """
        for (_, waiter), answer in zip(self.clients, answers, strict=True):
            if answer is None or answer[0] != 0:
                continue
            wait_s = answer[1] / 1000 if answer[1] > 0 else self.ttl
            wait_s = min(wait_s, BLOCKING_WAIT_CAP_S, remaining if remaining is not None else wait_s)
            with contextlib.suppress(RedisError):
                waiter.blpop([self.wake_key], timeout=max(wait_s, 0.01))
            return
        time.sleep(min(random.uniform(0, SPLIT_RETRY_MAX_S), remaining if remaining is not None else 1))  # noqa: S311

    # -- release, extend --------------------------------------------------------------

    def release(self):
        """Delete our key on every server that still has it and signal a waiter there.

        LockNotOwnedError if fewer than a majority still had our key: the lease had
        run out, and another holder may have run. LockUnavailable if too few servers
        answered to tell; the keys we left expire with their lease.
        """
        token = self._token
        if token is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        self._stop_watchdog()
        answers, errors = self._release_everywhere(token)
        lock_metrics.hold_seconds.labels(**self._labels).observe(time.monotonic() - self._acquired_at)
        released = sum(1 for a in answers if a == 1)
        self._token = None
        if released >= self.quorum:
            return
        self._report_lost("fewer than a majority of servers still had our key", token)
        if errors > len(self.clients) - self.quorum:
            raise self._too_few_answered(errors)
        raise LockNotOwnedError(f"{self.name!r} was lost before release")

    def extend(self, ttl=None):
        """Set the lease on every server to `ttl` (default: the lock's), the watchdog keeping that from now on."""
        seconds = self.ttl if ttl is None else check_seconds(ttl, "ttl")
        token = self._token
        if token is None:
            raise LockNotOwnedError(f"{self.name!r} is not held by this lock object")
        if not self._renew(token, seconds):
            self._report_lost("extend reached fewer than a majority", token)
            raise LockNotOwnedError(f"{self.name!r} is no longer ours on a majority of servers")
        self._lease_ttl = seconds

    def _renew(self, token, seconds):
        sent = time.monotonic()
        answers, errors = self._on_each(lambda c: scripts.EXTEND(c, [self.key], [token, max(1, round(seconds * 1000))]))
        validity = seconds - (time.monotonic() - sent) - self._drift(seconds)
        if sum(1 for a in answers if a == 1) >= self.quorum and validity > 0:
            self._lease_end = sent + validity
            return True
        if errors > len(self.clients) - self.quorum:
            raise self._too_few_answered(errors)
        return False

    def locked(self):
        answers, errors = self._on_each(lambda c: c.exists(self.key))
        if errors > len(self.clients) - self.quorum:
            raise self._too_few_answered(errors)
        return sum(1 for a in answers if a) >= self.quorum

    # -- watchdog ---------------------------------------------------------------------

    def _start_watchdog(self):
        stop = threading.Event()
        self._watchdog_stop = stop
        threading.Thread(
            target=self._renew_until_stopped, args=(self._token, stop), name=f"lock-watchdog:{self.name}", daemon=True
        ).start()

    def _stop_watchdog(self):
        if self._watchdog_stop is not None:
            self._watchdog_stop.set()
            self._watchdog_stop = None

    def _renew_until_stopped(self, token, stop):
        """Renew to the lease last asked for (ttl, or extend's) every third of it."""
        wait = self._lease_ttl / 3
        while not stop.wait(wait):
            interval = self._lease_ttl / 3
            try:
                renewed = self._renew(token, self._lease_ttl)
            except LockUnavailable as exc:
                if stop.is_set():
                    return
                if time.monotonic() + interval / 4 >= self._lease_end - interval / 2:
                    self._report_lost(f"too few servers answered until the lease would end ({exc})", token)
                    return
                wait = interval / 4
                continue
            if stop.is_set():
                return
            if not renewed:
                self._report_lost("fewer than a majority of servers renewed", token)
                return
            lock_metrics.renewed.labels(**self._labels).inc()
            wait = interval

    def _report_lost(self, reason, token):
        with self._lost_guard:
            if self._lost or self._token not in (token, None):
                return
            self._lost = True
        self._announce_lost(reason)

"""Failed-login lockout: credential stuffing and password guessing get a few tries, not millions.

Failures are counted in Redis (the Django cache), per username and per client IP,
each in a window of LOGIN_FAILURE_WINDOW_SECONDS. When either count reaches its limit
(LOGIN_FAILURES_PER_USERNAME, LOGIN_FAILURES_PER_IP), that username or that address
is locked for LOGIN_LOCKOUT_SECONDS: every login form (the shop's, the admin's, the
token API) refuses it before the password is even checked.

Why it is safe:
- the check sits in the authentication backend (`ThrottledModelBackend`), so no login
  path can skip it: the login page, the admin login and `POST /api/auth/token/` all
  go through `django.contrib.auth.authenticate()`;
- attempts made while locked are refused without being counted, so a locked user is
  free again at the end of the lockout, not one lockout after the attacker gives up;
- a success clears the username's count (not the address's: a valid account must not
  reset an attacker's per-address count);
- usernames are hashed into the keys, so nothing a client types becomes a raw key.

Trade-off: a per-username lock lets somebody lock a known username out for
LOGIN_LOCKOUT_SECONDS (docs/security.md). The lock is short and the per-address limit
stops one source from doing it to many accounts at once.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from core.errors import ShopError
from core.http import client_ip

_PREFIX = "login-throttle"


class LoginLocked(ShopError):
    code = "login_locked"
    status = 429
    default_detail = "Too many failed log-in attempts. Try again later."


@dataclass(frozen=True)
class Lockout:
    scope: str  # "username" or "ip"
    retry_after: int  # seconds until the lock lifts

    @property
    def message(self):
        minutes = max(1, -(-self.retry_after // 60))
        whose = "this account" if self.scope == "username" else "your network"
        return (
            f"Too many failed log-in attempts for {whose}. "
            f"For your security, logging in is paused for {minutes} minute{'s' if minutes != 1 else ''}."
        )

    def error(self):
        return LoginLocked(self.message, retry_after=self.retry_after)


def _digest(value):
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _subjects(username, ip):
    """(scope, key suffix, limit) for each counter that applies."""
    subjects = []
    name = (username or "").strip().lower()
    if name and settings.LOGIN_FAILURES_PER_USERNAME > 0:
        subjects.append(("username", f"u:{_digest(name)}", settings.LOGIN_FAILURES_PER_USERNAME))
    if ip and settings.LOGIN_FAILURES_PER_IP > 0:
        subjects.append(("ip", f"ip:{_digest(ip)}", settings.LOGIN_FAILURES_PER_IP))
    return subjects


def _lock_key(suffix):
    return f"{_PREFIX}:lock:{suffix}"


def _count_key(suffix):
    return f"{_PREFIX}:fail:{suffix}"


def lockout_for(*, username, ip):
    """The lock in force for this username or address, or None."""
    for scope, suffix, _ in _subjects(username, ip):
        ttl = cache.ttl(_lock_key(suffix))
        if ttl:  # django-redis: 0 = no such key, None = no expiry (never written so)
            return Lockout(scope, int(ttl) if ttl is not None else settings.LOGIN_LOCKOUT_SECONDS)
    return None


def record_failure(*, username, ip):
    """Count one failure; lock the username or address that reached its limit."""
    for _, suffix, limit in _subjects(username, ip):
        key = _count_key(suffix)
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        if cache.incr(key) >= limit:
            cache.set(_lock_key(suffix), 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
            cache.delete(key)


def record_success(*, username):
    for scope, suffix, _ in _subjects(username, None):
        if scope == "username":
            cache.delete(_count_key(suffix))


def unlock(*, username=None, ip=None):
    """Lift a lock by hand (support desk, tests)."""
    for _, suffix, _ in _subjects(username, ip):
        cache.delete_many([_lock_key(suffix), _count_key(suffix)])


class ThrottledModelBackend(ModelBackend):
    """Django's username/password check behind the lockout.

    A locked username or address is refused with PermissionDenied, which makes
    `authenticate()` stop at once (no other backend gets to check the password). A
    wrong password is counted and refused the same way, so the plain ModelBackend
    listed after this one (kept only so existing sessions stay valid) never gets a
    second, uncounted try at it.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        username = kwargs.get(self._username_field(), username)
        if username is None or password is None:
            return None
        ip = client_ip(request)
        if lockout_for(username=username, ip=ip) is not None:
            raise PermissionDenied("locked")
        user = super().authenticate(request, username=username, password=password)
        if user is None:
            record_failure(username=username, ip=ip)
            raise PermissionDenied("invalid credentials")
        record_success(username=username)
        return user

    @staticmethod
    def _username_field():
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD

"""Failed-login lockout: django-axes on the Redis cache, with the shop's two limits.

django-axes does the work (config/settings.py, `AXES_*`): its backend, first in
AUTHENTICATION_BACKENDS, refuses a locked username or address before the password is
checked, on every path that calls `authenticate()` with the request (the login page,
the admin login, `POST /api/auth/token/`); its signal handler counts each failure in
Redis (`AxesCacheHandler`: one INCR per counter, no database write); its middleware
hands a locked-out request to `lockout_response` below.

What this module adds to axes, because the shop's rules need it:
- two limits: axes compares every counter with one `AXES_FAILURE_LIMIT`; the shop
  locks a username after LOGIN_FAILURES_PER_USERNAME failures and an address after
  the more generous LOGIN_FAILURES_PER_IP (offices and carriers share addresses).
  `ShopCacheHandler` decides the lock per counter;
- a success clears the username's counter only, never the address's (axes'
  AXES_RESET_ON_SUCCESS clears both, which would let an attacker holding one valid
  account reset the count of the address it guesses from);
- usernames are compared trimmed and case-insensitively and prefixed with `user:`
  before axes hashes them into the key (axes hashes a username and an address the same
  way, so a username spelled like an address would otherwise share that address's
  counter);
- the refusal says why and for how long: `Lockout` (page message, API 429
  `login_locked` with Retry-After).

Attempts made while locked are not counted (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT
off), so a lock ends on time. A counter lives LOGIN_LOCKOUT_SECONDS after its last
failure (axes' cool-off); the lock is the counter at its limit, so it lifts when the
counter expires. Lift one by hand with `unlock(username=...)` or axes' own
`manage.py axes_reset_username <name>` / `axes_reset_ip <address>`.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from axes.handlers.cache import AxesCacheHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cache, get_client_cache_keys
from axes.models import AccessBase
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse, JsonResponse

from core.api_errors import error_body
from core.errors import ShopError
from core.http import client_ip

log = logging.getLogger(__name__)


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


# --- Callables named in the AXES_* settings -------------------------------------------


def username_value(raw):
    """The username as the counters know it: trimmed, lower case, prefixed; None if empty."""
    name = (raw or "").strip().lower()
    return f"user:{name}" if name else None


def username_for(request, credentials=None):
    """AXES_USERNAME_CALLABLE."""
    field = get_user_model().USERNAME_FIELD
    if credentials:
        return username_value(credentials.get(field))
    return username_value(getattr(request, "POST", {}).get(field))


def lockout_parameters(request_or_attempt, credentials=None):
    """AXES_LOCKOUT_PARAMETERS: a counter per username and one per address, each only if
    its limit is on and the value is known (an empty value would share one counter)."""
    if isinstance(request_or_attempt, AccessBase):
        username, ip = request_or_attempt.username, request_or_attempt.ip_address
    else:
        username, ip = username_for(request_or_attempt, credentials), client_ip(request_or_attempt)
    parameters = []
    if username and settings.LOGIN_FAILURES_PER_USERNAME > 0:
        parameters.append("username")
    if ip and settings.LOGIN_FAILURES_PER_IP > 0:
        parameters.append("ip_address")
    return parameters


def failure_limit(request, credentials=None):
    """AXES_FAILURE_LIMIT: the higher of the two limits, so that axes' own one-limit check
    never locks early; ShopCacheHandler then applies each counter's limit."""
    return max(settings.LOGIN_FAILURES_PER_USERNAME, settings.LOGIN_FAILURES_PER_IP, 1)


def cool_off(request=None):
    """AXES_COOLOFF_TIME: how long a counter (and so a lock) lives after its last failure."""
    return timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE, called by AxesMiddleware for a locked-out request.

    The shop's login page and the token API answer 429 with the reason themselves, and
    the admin login shows it in its form (accounts/admin.py, 200, made a 429 here).
    Anything else, such as a lock that lifted between axes' refusal and the view's
    question, gets the reason as `{code, detail}` under /api/ and as text elsewhere.
    """
    if original_response is not None and original_response.status_code == 429:
        return original_response
    if original_response is not None and original_response.status_code == 200 and not _is_api(request):
        original_response.status_code = 429
        return original_response
    username = (credentials or {}).get(get_user_model().USERNAME_FIELD)
    lock = lockout_for(request, username) or Lockout("username", settings.LOGIN_LOCKOUT_SECONDS)
    headers = {"Retry-After": str(lock.retry_after)}
    if _is_api(request):
        error = lock.error()
        return JsonResponse(error_body(error.code, error.detail, **error.extra), status=429, headers=headers)
    return HttpResponse(lock.message, status=429, content_type="text/plain; charset=utf-8", headers=headers)


def _is_api(request):
    return request.path.startswith("/api/")


# --- The shop's rules on axes' cache handler -------------------------------------------

_SCOPES = {"username": "username", "ip_address": "ip"}


def _limits():
    return {"username": settings.LOGIN_FAILURES_PER_USERNAME, "ip_address": settings.LOGIN_FAILURES_PER_IP}


def _counters(request_or_attempt, credentials=None):
    """[(parameter, cache key, limit)], in AXES_LOCKOUT_PARAMETERS order (axes keys them so)."""
    parameters = lockout_parameters(request_or_attempt, credentials)
    if not parameters:
        return []
    keys = get_client_cache_keys(request_or_attempt, credentials)
    limits = _limits()
    return [(parameter, key, limits[parameter]) for parameter, key in zip(parameters, keys, strict=True)]


def _lockout(request, credentials):
    counters = _counters(request, credentials)
    if not counters:
        return None
    cache = get_cache()
    counts = cache.get_many([key for _, key, _ in counters])
    for parameter, key, limit in counters:
        if counts.get(key, 0) >= limit:
            ttl = cache.ttl(key)  # django-redis: 0 = gone meanwhile, None = no expiry (never set so)
            if ttl != 0:
                return Lockout(_SCOPES[parameter], int(ttl) if ttl is not None else settings.LOGIN_LOCKOUT_SECONDS)
    return None


def lockout_for(request, username):
    """The lock in force for this username or this request's address, or None."""
    return _lockout(request, {get_user_model().USERNAME_FIELD: username})


def forget_failures(username):
    """A success: the username's counter starts again (the address's does not)."""
    AxesProxyHandler.reset_attempts(username=username)


def unlock(*, username=None, ip=None):
    """Lift a lock by hand (support desk, tests)."""
    AxesProxyHandler.reset_attempts(username=username, ip_address=ip)


class ShopCacheHandler(AxesCacheHandler):
    """AXES_HANDLER: axes' cache handler with a limit per counter (see the module docstring)."""

    def is_locked(self, request, credentials=None):
        return settings.AXES_LOCK_OUT_AT_FAILURE and _lockout(request, credentials) is not None

    def get_failures(self, request, credentials=None):
        counters = _counters(request, credentials)
        if not counters:
            return 0
        counts = self.cache.get_many([key for _, key, _ in counters])
        return max(counts.values(), default=0)

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)  # axes logs the misuse
        if not _counters(request, credentials):
            return None  # both limits off, or neither a username nor an address to count
        was_locked = getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request, **kwargs)  # counts (unless already locked)
        # axes compared the highest counter with one limit; decide with each counter's own.
        lock = _lockout(request, credentials)
        request.axes_locked_out = lock is not None
        if lock is not None and not was_locked:
            log.warning("Login lockout: %s locked for %d s after repeated failures.", lock.scope, lock.retry_after)
        return None

    def user_logged_in(self, sender, request, user, **kwargs):
        super().user_logged_in(sender, request, user, **kwargs)
        forget_failures(user.get_username())

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False):
        """Takes the username as typed (axes' reset commands, `unlock`) and finds its counter."""
        username, ip_address = username_value(username), ip_address or None
        if username is None and ip_address is None:
            return 0
        return super().reset_attempts(ip_address=ip_address, username=username, ip_or_username=ip_or_username)

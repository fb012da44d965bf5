"""Settings of django-axes and django-prometheus, star-imported by config/settings.py.

Both took over jobs the shop had done with code of its own (docs/what-we-use.md); their
settings live here so config/settings.py stays readable. Everything is read from the
environment like the rest of the settings.
"""

import environ

env = environ.Env()

# --- Failed-login lockout: django-axes on the Redis cache (accounts/lockout.py) ---------
# After LOGIN_FAILURES_PER_USERNAME failures for one username, or LOGIN_FAILURES_PER_IP
# from one address, that username or address is locked until LOGIN_LOCKOUT_SECONDS have
# passed since its last counted failure (axes' cool-off; attempts while locked do not
# count). Per address is generous: offices and carriers share one.
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=30)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)

# axes' cache handler (axes.handlers.cache.AxesCacheHandler: counters in the "default"
# cache, Redis; no database row per attempt), subclassed for the two limits above.
AXES_HANDLER = "accounts.lockout.ShopCacheHandler"
AXES_CACHE = "default"
AXES_LOCKOUT_PARAMETERS = "accounts.lockout.lockout_parameters"  # username or address, each on its own
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_USERNAME_CALLABLE = "accounts.lockout.username_for"  # trimmed, case-insensitive
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"  # REMOTE_ADDR, like every per-address rule (docs/security.md)
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = False  # the handler clears the username's count only, never the address's
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lock ends on time however long it is hammered
AXES_ENABLE_ADMIN = False  # the cache handler writes no AccessAttempt rows to list

# --- Request, DB and cache metrics: django-prometheus beside the shop's own ------------
# Its counters and histograms are prometheus_client's, so with PROMETHEUS_MULTIPROC_DIR
# they go to the same files as the shop's and /metrics (config/metrics.py) adds them up;
# its own exporter (django_prometheus.urls, a port of its own) is not used.
# Requests take milliseconds here: finer buckets at the low end than its default 10 ms.
PROMETHEUS_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))

_INSTRUMENTED = {
    "django.db.backends.mysql": "django_prometheus.db.backends.mysql",
    "django_redis.cache.RedisCache": "django_prometheus.cache.backends.redis.RedisCache",
}


def instrument(databases, caches):
    """Put django-prometheus's wrappers around the MySQL backend and the django-redis cache:
    queries (count, duration, errors), new connections, cache gets (hits, misses)."""
    for config in databases.values():
        config["ENGINE"] = _INSTRUMENTED.get(config["ENGINE"], config["ENGINE"])
    for config in caches.values():
        config["BACKEND"] = _INSTRUMENTED.get(config["BACKEND"], config["BACKEND"])


__all__ = [name for name in dir() if name.isupper()] + ["instrument"]

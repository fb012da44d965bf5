"""Settings for the flash-sale shop, read from the environment.

Every value has a default that works on a developer machine with MariaDB and Redis
on loopback, so `make run` needs no .env file. Production sets SECRET_KEY, DEBUG=0,
ALLOWED_HOSTS and HTTPS=1 (see docs/security.md).
"""

from pathlib import Path

import environ

from config.logs import log_format, logging_config
from config.settings_db import *  # noqa: F403 - DATABASES (config/settings_db.py)
from config.settings_db import replica_settings
from config.settings_libs import *  # noqa: F403 - django-axes and django-prometheus (config/settings_libs.py)

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here: the docs work offline, under the CSP
    "csp",
    "axes",  # failed-login lockout (accounts/lockout.py)
    "django_prometheus",  # request, DB and cache metrics on /metrics beside the shop's own
    "core",
    "locks",
    "accounts",
    "shop",
    "orders",
    "seckill",
    "reconciliation",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole stack
    "core.request_id.RequestIdMiddleware",  # X-Request-ID in and out, bound to every log line (core/request_id.py)
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.pages.FriendlyErrorsMiddleware",  # a page's bare 405 becomes an explanation (core/pages.py)
    "core.outage.OutageMiddleware",  # MariaDB/Redis down under a page: 503 "try again", not 500 (core/outage.py)
    "axes.middleware.AxesMiddleware",  # a locked-out login's answer (accounts/lockout.py)
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: per-view counts and latency
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "orders.context_processors.cart_summary",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# DATABASES (the primary, and the catalogue's read replica when DATABASE_REPLICA_URL is
# set) are built in config/settings_db.py; the replica also adds its middleware here.
if DATABASE_REPLICA_URL:  # noqa: F405
    vars().update(replica_settings(env, databases=DATABASES, middleware=MIDDLEWARE))  # noqa: F405
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, sessions, raw client ------------------------------------------
# Short socket timeouts: a paused Redis must turn into a clear 503 within a second or
# two, not a worker stuck for minutes.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "shop",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # A process waits briefly for a free connection instead of failing at once.
            "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {
                "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=100),
                "timeout": REDIS_SOCKET_TIMEOUT * 2,
                "health_check_interval": 30,
            },
        },
    }
}
# Redis Cluster (docs/scale-out.md): REDIS_CLUSTER_NODES=host:port,host:port,... (a few
# start-up nodes; the client learns the rest) puts every Redis use on the cluster: cache,
# sessions, sale state and streams, locks, rate limits, the units-back channel.
# REDIS_CLUSTER_RETRIES: attempts after a failed command beyond the first (0: a node that
# does not answer within REDIS_SOCKET_TIMEOUT is a 503 at once; redirections after a
# failover are followed all the same). Clusters have db 0 only.
REDIS_CLUSTER_NODES = env.list("REDIS_CLUSTER_NODES", default=[])
REDIS_CLUSTER_RETRIES = env.int("REDIS_CLUSTER_RETRIES", default=0)
if REDIS_CLUSTER_NODES:
    # A list of one string: django-redis would split a comma-separated LOCATION into a
    # master and replicas; the connection factory reads the whole node list instead.
    CACHES["default"]["LOCATION"] = [",".join(REDIS_CLUSTER_NODES)]
    CACHES["default"]["OPTIONS"].update(
        CONNECTION_FACTORY="core.redis_cluster.ClusterConnectionFactory", CLUSTER_RETRIES=REDIS_CLUSTER_RETRIES
    )
instrument(DATABASES, CACHES)  # noqa: F405 - django-prometheus's MySQL and django-redis wrappers
# Sessions live in Redis and are written through to the DB, so a Redis restart in the
# middle of a sale does not log every customer out or empty their carts.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14

# --- Auth -----------------------------------------------------------------------
LOGIN_URL = "login"
# Every password check passes django-axes' lockout first (accounts/lockout.py), on every
# login form (shop, admin, token API); the last entry only keeps older sessions valid.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "accounts.login_throttle.ThrottledModelBackend",
]
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18N / time ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Media: product images (shop/images.py) ----------------------------------------
# Uploaded images and their resized copies, in a git-ignored folder. The shop serves
# them itself (config/urls.py, Django's static `serve`, which refuses paths outside
# MEDIA_ROOT) unless SERVE_MEDIA=0, for a deployment whose web server or CDN does.
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)

# --- E-mail: order confirmations (orders/notifications.py), password resets ---------
# EMAIL_URL picks the backend: consolemail:// (the default: `make run` prints each
# e-mail in the worker's or web's output), filemail:///path, or
# smtp+tls://user:password@host:587 in production. Tests use Django's locmem outbox.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Flash Shop <shop@localhost>")
# The shop's address as customers reach it, for links in e-mails sent by Celery (no request there).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- REST framework ---------------------------------------------------------------
# Token first: its WWW-Authenticate header makes an anonymous API call a 401, not 403.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.api_errors.json_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Flash-sale shop API",
    "DESCRIPTION": "Catalogue, checkout, orders and flash sales. Errors are JSON {code, detail}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -----------------------------------------------------------------------
# RabbitMQ by default, with quorum queues (replicated, durable; docs/scale-out.md): kombu
# has no Redis Cluster transport, and the broker should not share the sale Redis's fate.
# CELERY_BROKER_URL=redis://127.0.0.1:6379/1 still works (a standalone Redis, not a cluster).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_IS_AMQP = CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_IS_AMQP:
    # Quorum queues: a message survives a broker node's loss and is never held in memory
    # only. They need durable queues and support neither global QoS (the worker detects
    # them and prefetches per consumer) nor priorities. Countdown retries use Celery's
    # native delayed delivery, which routes through a topic exchange. Publisher confirms:
    # .delay() returns once the broker has the message.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
else:
    # Redis broker: an unacknowledged task comes back after the visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TIMEZONE = TIME_ZONE

# --- Shop rules -------------------------------------------------------------------
ORDER_PAYMENT_MINUTES = env.int("ORDER_PAYMENT_MINUTES", default=30)
# Attempts of a version-checked stock UPDATE before answering "busy, try again".
STOCK_UPDATE_ATTEMPTS = env.int("STOCK_UPDATE_ATTEMPTS", default=12)
CART_MAX_QUANTITY = 99

# --- Security ---------------------------------------------------------------------
# HTTPS=1 in production turns on secure cookies, HSTS and the redirect. It is off by
# default because `make run` serves plain http on loopback.
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content Security Policy (django-csp), on in every environment so the tests and the
# browser test run under the production policy: scripts and stylesheets only from this
# origin, no inline <script>, no framing, forms post only here. Inline style="..."
# attributes are still allowed (style-src-attr): a few templates draw progress bars
# with them, and an attribute cannot run code. Swagger UI on /api/docs/ is served from
# this origin too (drf-spectacular-sidecar), so the docs need no exception.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "upgrade-insecure-requests": HTTPS,
    },
}

# The failed-login lockout's LOGIN_* settings are in config/settings_libs.py.
# Bearer token that lets a Prometheus scraper read /metrics (staff can read it logged in).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Logging ----------------------------------------------------------------------
# Structured logs (config/logs.py): JSON lines by default, LOG_FORMAT=console for readable
# ones (the default with DEBUG on, and under `make run`). Each request has a request id
# (core/request_id.py), which every line logged while it runs carries.
LOG_FORMAT = log_format(requested=env.str("LOG_FORMAT", default=""), debug=DEBUG)
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# --- Flash sales ------------------------------------------------------------------
# When a purchase is acknowledged (docs/architecture.md, "Durability"). committed: the
# request waits up to SECKILL_ACK_WAIT_SECONDS for the order writer to commit its order
# and answers 201 with it (202 "confirming" if the writer is slower). reserved: it
# answers 202 "confirming" as soon as Redis has accepted it; then the sale's Redis must
# keep its data on disk (appendonly yes), or a Redis restart loses acknowledged orders.
SECKILL_ACK = env.str("SECKILL_ACK", default="committed")
if SECKILL_ACK not in ("committed", "reserved"):
    raise ValueError(f"SECKILL_ACK must be 'committed' or 'reserved', not {SECKILL_ACK!r}")
SECKILL_ACK_WAIT_SECONDS = env.float("SECKILL_ACK_WAIT_SECONDS", default=2.0)
# Tests only: the purchase request runs the order writer's loop itself (like Celery's
# eager mode), so a test needs no writer process. Never in production.
SECKILL_WRITER_EAGER = env.bool("SECKILL_WRITER_EAGER", default=False)
# An intent a writer read and has not settled for this long is claimed by another writer
# (seckill/intents.py): long enough that a live writer finishes a batch (a batch of 500
# commits in well under a second), short enough that a dead writer's orders are not
# held up for long. Writing a claimed intent twice is a no-op (unique reservation id).
SECKILL_WRITER_CLAIM_IDLE_MS = env.int("SECKILL_WRITER_CLAIM_IDLE_MS", default=10_000)
# Requests per window on the purchase endpoint of one sale. Per IP is generous because
# many customers can share one address (offices, mobile carriers); 0 turns a rule off.
SECKILL_RATE_LIMIT_PER_CUSTOMER = env.int("SECKILL_RATE_LIMIT_PER_CUSTOMER", default=5)
SECKILL_RATE_LIMIT_PER_IP = env.int("SECKILL_RATE_LIMIT_PER_IP", default=300)
SECKILL_RATE_LIMIT_WINDOW_MS = env.int("SECKILL_RATE_LIMIT_WINDOW_MS", default=1000)
# How long a web process trusts its copy of a sale's settings and its "sold out" flag.
SECKILL_META_CACHE_SECONDS = env.float("SECKILL_META_CACHE_SECONDS", default=2.0)
SECKILL_SOLD_OUT_RECHECK_SECONDS = env.float("SECKILL_SOLD_OUT_RECHECK_SECONDS", default=1.0)
SECKILL_WARMUP_LEAD_MINUTES = env.int("SECKILL_WARMUP_LEAD_MINUTES", default=5)
SECKILL_IDEMPOTENCY_TTL_SECONDS = env.int("SECKILL_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A reservation with no order after this long is stranded; the sweep gives it back.
SECKILL_RESERVATION_GRACE_SECONDS = env.int("SECKILL_RESERVATION_GRACE_SECONDS", default=120)
# Purchase token (seckill/purchase_token.py): when required, a purchase must carry a
# signed token bound to the customer and the sale, which the sale page (or
# GET /api/seckill/activities/<id>/token/) hands out only from LEAD seconds before the
# start and which is good for MAX_AGE seconds, so a bot cannot fire purchases before
# the start without having loaded the sale shortly before it. Off by default for
# development and tests; production turns it on (docs/security.md).
SECKILL_PURCHASE_TOKEN_REQUIRED = env.bool("SECKILL_PURCHASE_TOKEN_REQUIRED", default=False)
SECKILL_PURCHASE_TOKEN_LEAD_SECONDS = env.int("SECKILL_PURCHASE_TOKEN_LEAD_SECONDS", default=60)
SECKILL_PURCHASE_TOKEN_MAX_AGE_SECONDS = env.int("SECKILL_PURCHASE_TOKEN_MAX_AGE_SECONDS", default=300)
# Distinct accounts that may buy in one sale from one client IP (seckill/shared_ip.py).
# 0 = off (the default): many honest customers share an address behind NAT, in
# offices and on mobile carriers, so this rule is for sales where scalpers with many
# accounts matter more than those customers (docs/security.md).
SECKILL_BUYERS_PER_IP = env.int("SECKILL_BUYERS_PER_IP", default=0)

# --- Benchmark endpoints (`make bench` only) --------------------------------------
# BENCH_ENDPOINTS=1 installs bench/strategies and mounts it under /bench/ (config/urls.py):
# the yardsticks of docs/benchmarks.md, including the overselling lock of the incident in docs/architecture.md.
# Never set it anywhere but the benchmark's own server.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)
if BENCH_ENDPOINTS:
    INSTALLED_APPS.append("bench.strategies")

# --- Locks (locks/, docs/locks.md "Which lock for which job") ------------------------
# Servers of the coordination-service backends. REDLOCK_URLS: independent Redis servers
# (no replicas of each other), at least three; empty means no RedLock is configured.
ZOOKEEPER_HOSTS = env.str("ZOOKEEPER_HOSTS", default="127.0.0.1:2181")
ETCD_URL = env.str("ETCD_URL", default="http://127.0.0.1:2379")
REDLOCK_URLS = env.list("REDLOCK_URLS", default=[])
LOCKS_ZOOKEEPER_ROOT = env.str("LOCKS_ZOOKEEPER_ROOT", default="/flashshop/locks")
LOCKS_ETCD_PREFIX = env.str("LOCKS_ETCD_PREFIX", default="flashshop/locks/")
# Bounds of one call to a lock server: well under half the shortest lease, so a watchdog
# can still report a lost lock before the lease ends (docs/locks.md, "Failure modes").
LOCKS_ETCD_TIMEOUT = env.float("LOCKS_ETCD_TIMEOUT", default=1.0)
LOCKS_REDLOCK_SOCKET_TIMEOUT = env.float("LOCKS_REDLOCK_SOCKET_TIMEOUT", default=0.1)
# The lock each job takes, for locks.lock_for(job, name): backend is one of redis,
# redlock, mysql, zookeeper, etcd; the other keys go to that backend's constructor.
LOCKS = {
    "warmup": {
        "backend": env.str("LOCK_WARMUP_BACKEND", default="redis"),
        "ttl": env.float("LOCK_WARMUP_TTL", default=30.0),
        "fencing": False,
    },
    "reconciliation": {
        "backend": env.str("LOCK_RECONCILIATION_BACKEND", default="mysql"),
        "ttl": env.float("LOCK_RECONCILIATION_TTL", default=30.0),
        "auto_renew": True,  # a run takes minutes; ignored by mysql and zookeeper, which need none
    },
}

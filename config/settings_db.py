"""The database settings, star-imported by config/settings.py: the primary, and the
catalogue's read replica (core/db_router.py, docs/scale-out.md "The database").

The replica: DATABASE_REPLICA_URL=mysql://user@replica-host:3306/flashshop sends reads of products
from read-only requests to it; everything else stays on the primary. Unset (the
default, and in make test): one database, no router, no pinning middleware. The
replica's timeouts are short: one that does not answer within them is left out for
DATABASE_REPLICA_RETRY_SECONDS and the pages read the primary. A check that passed is
trusted for DATABASE_REPLICA_CHECK_SECONDS; DATABASE_REPLICA_MAX_LAG_SECONDS (0: off)
also leaves out a replica further behind than that, and should stay below the pin.
"""

import environ

env = environ.Env()

DATABASES = {
    "default": env.db("DATABASE_URL", default="mysql://root@127.0.0.1:3306/flashshop"),
}
# READ COMMITTED: every statement of a retry loop sees the rows other transactions
# have committed. Under MariaDB's default REPEATABLE READ a version-checked retry
# would keep reading its first snapshot and never see the new version.
DB_OPTIONS = {
    "charset": "utf8mb4",
    "isolation_level": "read committed",
    # A purchase waiting on a row lock gives up after a few seconds (and is retried a
    # bounded number of times, core/db.py) instead of holding a worker for 50 s.
    "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION', innodb_lock_wait_timeout="
    + str(env.int("DB_LOCK_WAIT_TIMEOUT", default=5)),
    "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
}
DATABASES["default"].setdefault("OPTIONS", {}).update(DB_OPTIONS)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {
    "NAME": env.str("TEST_DATABASE_NAME", default=f"test_{DATABASES['default']['NAME']}"),
    "CHARSET": "utf8mb4",
    "COLLATION": "utf8mb4_unicode_ci",
}
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")


def replica_settings(env, *, databases, middleware):
    """Add the `replica` alias to `databases` and the pinning middleware to `middleware`
    (both changed in place); return the other settings to set."""
    extra = {}
    databases["replica"] = env.db("DATABASE_REPLICA_URL")
    databases["replica"].setdefault("OPTIONS", {}).update(
        DB_OPTIONS,
        connect_timeout=env.int("DB_REPLICA_CONNECT_TIMEOUT", default=1),
        read_timeout=env.int("DB_REPLICA_READ_TIMEOUT", default=3),
    )
    databases["replica"]["CONN_MAX_AGE"] = databases["default"]["CONN_MAX_AGE"]
    databases["replica"]["CONN_HEALTH_CHECKS"] = True
    # Tests that do not ask for the real replica read the default's test database through
    # this alias (core/tests/test_db_replica.py explains how the replica's own tests run).
    databases["replica"]["TEST"] = {"MIRROR": "default"}
    extra["REPLICA_DATABASES"] = ["replica"]  # the name django-multidb-router reads
    extra["DATABASE_ROUTERS"] = ["core.db_router.CatalogueReplicaRouter"]
    # Right after the session and the user: it pins staff, and opens replica reads for a read-only request.
    middleware.insert(
        middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "core.db_router.ReplicaPinningMiddleware",
    )
    # After a request that may have written, that client reads the primary for this long.
    extra["MULTIDB_PINNING_SECONDS"] = env.int("MULTIDB_PINNING_SECONDS", default=15)
    extra["MULTIDB_PINNING_COOKIE_HTTPONLY"] = True
    extra["DATABASE_REPLICA_CHECK_SECONDS"] = env.float("DATABASE_REPLICA_CHECK_SECONDS", default=2.0)
    extra["DATABASE_REPLICA_RETRY_SECONDS"] = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=10.0)
    extra["DATABASE_REPLICA_MAX_LAG_SECONDS"] = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=10.0)
    extra["MULTIDB_PINNING_COOKIE_SECURE"] = env.bool("HTTPS", default=False)  # as the session cookie
    return extra

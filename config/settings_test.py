"""Settings for the test suite: the real MariaDB and Redis, on their own database and db index.

TEST_REDIS_URL lets two checkouts run their suites side by side on one Redis server.
With REDIS_CLUSTER_NODES set (`make test-cluster`) every Redis use goes to that cluster
instead, which has db 0 only: the suite then needs a cluster of its own, since each test
flushes every master (conftest.py).
"""

import os
import tempfile

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# Tasks run eagerly in tests; config/tests/test_broker.py publishes through the real broker.
os.environ.setdefault(
    "CELERY_BROKER_URL", os.environ.get("TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
)

os.environ.setdefault("REDIS_MAX_CONNECTIONS", "1500")  # bursts of ~1,000 threads in one process

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
CELERY_TASK_ALWAYS_EAGER = True
SECKILL_WRITER_EAGER = True  # each purchase drains the order stream itself (seckill/writer.py)
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405 - threads in tests must not keep connections
# Product images written by tests go to a folder of this run, never the checkout's media/.
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), f"flashshop-test-media-{os.getpid()}")
if "replica" in DATABASES:  # noqa: F405 - DATABASE_REPLICA_URL set (make test-replica)
    DATABASES["replica"]["CONN_MAX_AGE"] = 0  # noqa: F405

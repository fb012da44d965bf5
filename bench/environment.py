"""What the bench's servers run with, and what a result records about the machine and
the application's settings (bench/run.py writes both into bench/results/latest.json)."""

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from bench.loadgen import wrk_version

DB_NAME = "flashshop_bench"


def server_env(redis_port, ack="committed", customer_rate_limit=None):
    """The environment of the bench's servers and writers; `ack` is SECKILL_ACK (committed or reserved)."""
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/1",
        BENCH_ENDPOINTS="1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        # All the load comes from 127.0.0.1: a per-IP limit would measure the limiter.
        SECKILL_RATE_LIMIT_PER_IP="0",
        SECKILL_ACK=ack,
    )
    if customer_rate_limit is not None:
        env["SECKILL_RATE_LIMIT_PER_CUSTOMER"] = str(customer_rate_limit)
    # The bench's own redis-server, never a cluster from the caller's environment.
    for name in (
        "CELERY_TASK_ALWAYS_EAGER",
        "SECKILL_WRITER_EAGER",
        "TEST_REDIS_URL",
        "TEST_CELERY_BROKER_URL",
        "REDIS_CLUSTER_NODES",
    ):
        env.pop(name, None)
    return env


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    redis_server = subprocess.run(  # noqa: S603
        [shutil.which("redis-server") or "redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@max_connections")
        mariadb, flush, max_conn = cursor.fetchone()
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            "django": _version("Django"),
            "djangorestframework": _version("djangorestframework"),
            "gunicorn": _version("gunicorn"),
            "celery": _version("celery"),
            "redis-py": _version("redis"),
            "hiredis": _version("hiredis"),
            "mysqlclient": _version("mysqlclient"),
            "redis-server": redis_server.split()[2].removeprefix("v=") if redis_server else None,
            "mariadb": mariadb,
            "wrk": wrk_version(),
        },
        "mariadb": {"innodb_flush_log_at_trx_commit": int(flush), "max_connections": int(max_conn)},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "shared_machine": True,
    }


def app_settings():
    from django.conf import settings

    names = (
        "SECKILL_RATE_LIMIT_PER_IP",
        "SECKILL_RATE_LIMIT_PER_CUSTOMER",
        "SECKILL_RATE_LIMIT_WINDOW_MS",
        "SECKILL_ACK_WAIT_SECONDS",
        "SECKILL_META_CACHE_SECONDS",
        "SECKILL_SOLD_OUT_RECHECK_SECONDS",
        "SECKILL_PURCHASE_TOKEN_REQUIRED",
        "SECKILL_BUYERS_PER_IP",
        "STOCK_UPDATE_ATTEMPTS",
        "DEBUG",
    )
    out = {name: getattr(settings, name) for name in names if hasattr(settings, name)}
    out["DB_CONN_MAX_AGE"] = settings.DATABASES["default"]["CONN_MAX_AGE"]
    out["DB_ISOLATION"] = settings.DATABASES["default"]["OPTIONS"].get("isolation_level")
    out["SECKILL_ACK"] = "committed (seckill, seckill_soldout, ceiling, db_*, naive), reserved (seckill_reserved)"
    from seckill import writer

    out["writer"] = {"max_batch": writer.MAX_BATCH, "block_ms": writer.BLOCK_MS}
    return out

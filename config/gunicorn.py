"""gunicorn settings beside the Procfile's command line (`--config python:config.gunicorn`).

The Procfile serves with the gthread worker class: a connection a browser keeps alive
and idle waits in the worker's poller instead of holding the worker (a sync worker is
tied up by it until its timeout, then killed, and the next request gets gunicorn's bare
error page). A connection that never sends a request (a browser's speculative one) still
holds a thread for up to 5 s before gthread parks it (gunicorn's own limit), so many of
them can still make a page wait; in production a reverse proxy in front (nginx) buffers
those. With PROMETHEUS_MULTIPROC_DIR set (`make run` creates it fresh), each
worker writes its metrics to files there and config/metrics.py adds them up; when a
worker exits, its live gauges are dropped here so a restarted worker is not counted twice.
"""

import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

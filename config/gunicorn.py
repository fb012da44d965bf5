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
gunicorn's own log and its access log go through the shop's log formatter (config/logs.py):
JSON lines, one per request with its status, duration and request id; LOG_FORMAT=console
(or DEBUG=1) for readable ones.
"""

import os

from gunicorn.glogging import Logger

from config.logs import formatter, log_format


class StructuredLogger(Logger):
    """gunicorn's own handlers (where --access-logfile and --error-logfile say, at --log-level),
    with the shop's formatter: the access line becomes fields (config/logs.py)."""

    def setup(self, cfg):
        super().setup(cfg)
        debug = os.environ.get("DEBUG", "").lower() in ("1", "true", "yes", "on", "y")
        structured = formatter(log_format(requested=os.environ.get("LOG_FORMAT", ""), debug=debug), gunicorn=True)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(structured)


logger_class = StructuredLogger


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""The Celery app. Tasks live in each app's tasks.py; the schedule lives in config/beat.py.

Logging: the worker and beat log through Django's LOGGING (JSON lines, config/logs.py)
instead of Celery's own handlers, and each line logged in a task carries its
`task_id` and `task` name.
"""

import os

from celery import Celery, signals
from structlog.contextvars import bind_contextvars, unbind_contextvars

from config.beat import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("flashshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@signals.setup_logging.connect
def _use_django_logging(loglevel=None, **kwargs):
    """Connected, so Celery leaves the root logger to Django's LOGGING (config/logs.py)."""
    from django.conf import settings

    from config.logs import celery_logging

    celery_logging(settings.LOGGING, loglevel)


@signals.task_prerun.connect
def _bind_task(task_id=None, task=None, **kwargs):
    bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**kwargs):
    unbind_contextvars("task_id", "task")

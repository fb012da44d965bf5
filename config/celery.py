"""The Celery app. Tasks live in each app's tasks.py; the schedule lives in config/beat.py."""

import os

from celery import Celery

from config.beat import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("flashshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()

"""Celery on the real RabbitMQ broker, as `make run` starts it (config/settings.py, docs/scale-out.md).

Everywhere else in the suite tasks run eagerly; here one is published through the broker
of CELERY_BROKER_URL (RabbitMQ by default; `make test` starts it) to a quorum queue of
its own, and a real `celery worker` process runs it against the test database.
"""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from config.celery import app
from orders.models import OrderEmail
from orders.services import CartLine, order_create
from shop.tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]


def _worker_env():
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
    }


def test_the_default_broker_is_rabbitmq_with_quorum_queues_and_publisher_confirms():
    assert settings.CELERY_BROKER_URL.startswith("amqp://"), "the suite runs with the default broker"
    assert app.conf.task_default_queue_type == "quorum" and app.conf.task_acks_late is True
    assert app.conf.broker_transport_options == {"confirm_publish": True}
    queue = app.amqp.queues["celery"]
    assert queue.durable and queue.queue_arguments == {"x-queue-type": "quorum"}


@pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")  # sending is the point
def test_a_task_published_through_rabbitmq_runs_in_a_real_worker(customer):
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=3) as broker:
        broker.ensure_connection(max_retries=1)  # make test starts RabbitMQ (scripts/services.sh)
    order, _ = order_create(user=customer, lines=[CartLine(ProductFactory(stock=3).pk, 1)])
    OrderEmail.objects.filter(order=order).delete()  # the eager run sent it; the worker sends it again
    name = f"test-broker-{uuid.uuid4().hex[:12]}"  # a queue of this test's own: a running shop's worker never takes it
    queue = app.amqp.queues[name]
    worker = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config", "worker", "-Q", name, "--pool", "solo", *QUIET],
        cwd=ROOT,
        env=_worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with app.connection_for_write() as conn:
            queue(conn.default_channel).declare()  # the message waits in it until the worker is up
            assert conn.default_channel.queue_declare(name, passive=True).queue == name
        app.send_task("orders.tasks.send_order_confirmation", args=[order.pk], queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = OrderEmail.objects.filter(order=order).first()
            if row is not None and row.sent_at is not None:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("the worker did not run the task within 60 s")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(name)
    assert row.recipient == customer.email

"""MariaDB or Redis dropping under a request: 503 "try again", never a 500 (core/outage.py).

The database failures are real: another connection KILLs the app's connections on the
MariaDB server, as a database restart or a failover would.
"""

import contextlib
import json
import threading
import time

import MySQLdb
import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.errors import server_error
from seckill import intents, writer
from seckill.tests.conftest import create_customers, create_sale, many_connections  # noqa: F401 - fixture
from seckill.tests.invariants import assert_invariants
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _admin_connection():
    s = connection.settings_dict
    return MySQLdb.connect(
        host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"], password=s["PASSWORD"] or ""
    )


@contextlib.contextmanager
def killing_new_connections():
    """Every DB connection the app opens meanwhile is KILLed by another connection at once."""
    killer = _admin_connection()
    lock = threading.Lock()

    def kill(sender, connection, **kwargs):
        thread_id = connection.connection.thread_id()
        with lock, killer.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(thread_id)}")

    connection_created.connect(kill)
    try:
        yield
    finally:
        connection_created.disconnect(kill)
        killer.close()
        connection.close()  # the test client keeps the request's (killed) connection open


def test_the_token_lookup_on_a_dropped_connection_answers_503_json(customer):
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=customer).key}")
    connection.close()
    with killing_new_connections():
        response = api.get("/api/orders/")
    assert response.status_code == 503, response.content
    assert response.json() == {"code": "unavailable", "detail": response.json()["detail"]}
    assert "try again" in response.json()["detail"] and response["Retry-After"] == "5"


def test_a_page_on_a_dropped_connection_answers_the_try_again_page():
    ProductFactory(slug="tea", name="Tea")
    connection.close()
    with killing_new_connections():
        response = Client(raise_request_exception=False).get("/products/")
    assert response.status_code == 503
    body = response.content.decode()
    assert "Please try again" in body and "Server error" not in body
    assert response["Content-Type"].startswith("text/html")


def test_a_middleware_failing_on_a_dropped_connection_gets_the_503_from_handler500(rf):
    """Outside a view (a middleware) Django calls handler500 with the error being handled (config/errors.py)."""
    connection.ensure_connection()
    with _admin_connection().cursor() as cursor:
        cursor.execute(f"KILL CONNECTION {int(connection.connection.thread_id())}")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        page = server_error(rf.get("/cart/"))
        api = server_error(rf.get("/api/orders/"))
    finally:
        connection.close()
    assert page.status_code == 503 and b"Please try again" in page.content
    assert api.status_code == 503 and json.loads(api.content)["code"] == "unavailable"
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(rf.get("/cart/")).status_code == 500  # a bug stays a logged 500


def test_a_session_write_on_a_dropped_connection_is_no_500(customer):
    """SessionMiddleware saves after the view; Django answers a failed save with its 400 "session interrupted"."""
    product = ProductFactory(slug="tea", name="Tea", stock=5)
    client = Client(raise_request_exception=False)
    client.force_login(customer)
    killer = _admin_connection()
    seen = []

    def kill_before_session_write(execute, sql, params, many, context):
        if "django_session" in sql and not sql.lstrip().upper().startswith("SELECT"):
            seen.append(sql)
            with killer.cursor() as cursor:
                cursor.execute(f"KILL CONNECTION {int(context['connection'].connection.thread_id())}")
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(kill_before_session_write)
    try:
        response = client.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    finally:
        connection.execute_wrappers.remove(kill_before_session_write)
        killer.close()
        connection.close()
    assert seen, "the view wrote no session: the test proved nothing"
    assert response.status_code in (400, 503)


def test_redis_down_answers_503_json_on_the_purchase_api(settings, customer):
    activity = create_sale(stock=2)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=customer).key}")
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = caches
    response = api.post(f"/api/seckill/activities/{activity.pk}/purchase/", {"quantity": 1}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "unavailable"


def _kill_app_connections(stop, protect, killed):
    """From its own connection, KILL every other connection to the test database until `stop`."""
    admin = _admin_connection()
    name = connection.settings_dict["NAME"]
    try:
        while not stop.is_set():
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", [name]
                )
                for (thread_id,) in cursor.fetchall():
                    if thread_id in protect:
                        continue
                    with contextlib.suppress(MySQLdb.OperationalError):  # it may have closed meanwhile
                        cursor.execute(f"KILL CONNECTION {int(thread_id)}")
                        killed.append(thread_id)
            time.sleep(0.005)
    finally:
        admin.close()


@pytest.mark.slow
@pytest.mark.usefixtures("many_connections")
def test_killing_the_apps_db_connections_mid_burst_gives_no_500_and_breaks_no_invariant():
    activity = create_sale(stock=40, limit=1)
    buyers = create_customers(120)
    tokens = dict(Token.objects.values_list("user_id", "key"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (main_id,) = cursor.fetchone()
    statuses, lock = [], threading.Lock()
    start = threading.Barrier(len(buyers) + 1)

    def customer(user):
        api = APIClient(raise_request_exception=False)
        api.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.pk]}")
        start.wait(timeout=30)
        for _ in range(3):
            for response in (
                api.post(f"/api/seckill/activities/{activity.pk}/purchase/", {"quantity": 1}, format="json"),
                api.get("/api/orders/"),
            ):
                with lock:
                    statuses.append(response.status_code)
        connection.close()

    stop, killed = threading.Event(), []
    threads = [threading.Thread(target=customer, args=(u,), daemon=True) for u in buyers]
    for thread in threads:
        thread.start()
    killer = threading.Thread(target=_kill_app_connections, args=(stop, {main_id}, killed), daemon=True)
    start.wait(timeout=30)
    killer.start()
    for thread in threads:
        thread.join(90)
    stop.set()
    killer.join(10)

    assert killed, "the burst never lost a connection: the test proved nothing"
    assert 500 not in statuses, sorted(set(statuses))
    assert set(statuses) <= {200, 201, 202, 409, 429, 503}, sorted(set(statuses))
    assert 503 in statuses
    # Nothing half-written: after the outage a writer settles every accepted intent,
    # and the sale's counters agree with its orders.
    connection.close()
    for _ in range(3):
        writer.write_batch(activity.pk, intents.claim_stale(activity.pk, consumer="after", count=500, min_idle_ms=0))
    writer.drain(activity.pk)
    assert_invariants(activity)

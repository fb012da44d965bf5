"""Catalogue reads on a real MariaDB read replica (core/db_router.py): `make test-replica`.

Skipped unless DATABASE_REPLICA_URL is set. `make test-replica` (scripts/test_replica.sh)
starts a private primary on 127.0.0.1:3316 and a replica on 127.0.0.1:3317 replicating
from it by GTID (scripts/db_replica.sh), and runs this module with DATABASE_URL and
DATABASE_REPLICA_URL pointing at them.

How the test database exists on both. The replica replays the primary's binary log from
its very start, so pytest-django creates the test database on the primary as in any run
(CREATE DATABASE, then the migrations) and replication carries the database, its tables
and every row the tests write to the replica. The `replica` alias is a test mirror of
`default` (TEST MIRROR in config/settings.py): Django then creates no test database for it
and, since Django's mirror only takes the primary's test database NAME, the alias still
reaches its own server, 3317, under that name, i.e. the replicated copy. Django also
leaves a mirror out of the flush after each test, so nothing is ever written to the
replica directly: rows are emptied on the primary and the replica follows.
`real_replica` checks that the alias really reaches another server (its server_id) and
waits until the replica has applied everything the primary has logged (MASTER_GTID_WAIT).

How a read is shown to come from the replica. The replica's SQL thread is stopped (STOP
SLAVE SQL_THREAD) and a product is renamed on the primary: the replica keeps the old
name. A page showing the old name read the replica, one showing the new name read the
primary. A paused replica is a real SIGSTOPped mariadbd; a stopped one is a port on
which nothing listens.
"""

import os
import signal
import socket
import time
from contextlib import closing, contextmanager

import MySQLdb
import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse

from core import db_router
from orders.models import Order
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_REPLICA_URL"),
        reason="needs a real MariaDB primary and replica: make test-replica sets DATABASE_REPLICA_URL",
    ),
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
]

OLD, NEW = "Plum wine (old name)", "Plum wine (new name)"


def _server(alias):
    """A connection of the test's own to the server behind `alias`, outside Django."""
    s = connections[alias].settings_dict
    return closing(
        MySQLdb.connect(
            host=s["HOST"], port=int(s["PORT"]), user=s["USER"], password=s["PASSWORD"] or "", database=s["NAME"]
        )
    )


def _one(alias, sql, args=None):
    with _server(alias) as conn, conn.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchone()[0]


def wait_for_replica(timeout=30.0):
    """Until the replica has applied every transaction the primary has logged so far."""
    position = _one("default", "SELECT @@gtid_binlog_pos")
    deadline = time.monotonic() + timeout
    while _one("replica", "SELECT MASTER_GTID_WAIT(%s, 1)", [position]) != 0:
        assert time.monotonic() < deadline, f"the replica did not reach {position} within {timeout} s"


@contextmanager
def sql_thread_stopped():
    with _server("replica") as conn, conn.cursor() as cursor:
        cursor.execute("STOP SLAVE SQL_THREAD")
        try:
            yield
        finally:
            cursor.execute("START SLAVE SQL_THREAD")


@contextmanager
def replica_paused():
    """The replica's mariadbd SIGSTOPped: it accepts TCP connections and never answers."""
    with open(_one("replica", "SELECT @@pid_file")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def real_replica(settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0  # the lag bound's own test turns it on
    settings.DATABASE_REPLICA_RETRY_SECONDS = 1
    assert connections["replica"].settings_dict["TEST"]["MIRROR"] == "default"
    assert connections["replica"].settings_dict["NAME"] == connections["default"].settings_dict["NAME"]
    assert (_one("default", "SELECT @@server_id"), _one("replica", "SELECT @@server_id")) == (1, 2)
    wait_for_replica()
    db_router.health.reset()
    yield
    db_router.health.reset()
    wait_for_replica()


@pytest.fixture
def renamed(real_replica):
    """A product whose new name is on the primary only: the replica's SQL thread is stopped."""
    product = ProductFactory(slug="plum-wine", name=OLD, price="30.00", stock=5)
    wait_for_replica()
    with sql_thread_stopped():
        Product.objects.filter(pk=product.pk).update(name=NEW)
        yield product


def page(client, product):
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def test_a_catalogue_page_reads_the_replica_and_other_reads_the_primary(renamed):
    assert OLD in page(Client(), renamed)
    assert Client().get(reverse("api:product-detail", args=[renamed.slug])).json()["name"] == OLD
    with db_router.replica_reads():
        assert Product.objects.get(pk=renamed.pk).name == OLD
        assert Product.objects.using("default").get(pk=renamed.pk).name == NEW
        with transaction.atomic():  # a read inside a transaction belongs with its writes
            assert Product.objects.get(pk=renamed.pk).name == NEW
        assert Order.objects.db_manager().db == "default"  # not a catalogue model
    # Outside a read-only request (Celery, the order writer, commands): the primary.
    assert Product.objects.get(pk=renamed.pk).name == NEW


def test_after_a_write_the_client_reads_its_own_writes(renamed):
    client = Client()
    assert OLD in page(client, renamed)
    response = client.post(reverse("orders:cart-add", args=[renamed.pk]), {"quantity": 1})
    assert response.status_code == 302
    assert response.cookies["multidb_pin_writes"]["max-age"] == settings.MULTIDB_PINNING_SECONDS
    assert NEW in page(client, renamed)  # pinned by the cookie
    assert OLD in page(Client(), renamed)  # another client is not


def test_staff_and_the_admin_read_the_primary(renamed, staff):
    client = Client()
    client.force_login(staff)
    assert NEW in page(client, renamed)
    response = client.get(reverse("admin:shop_product_change", args=[renamed.pk]))
    assert response.status_code == 200
    assert NEW in response.content.decode()


def test_writes_and_migrations_go_to_the_primary(real_replica):
    router = db_router.CatalogueReplicaRouter()
    with db_router.replica_reads():
        assert router.db_for_read(Product) == "replica"
        assert router.db_for_write(Product) == "default"
    assert router.allow_migrate("default", "shop") is True
    assert router.allow_migrate("replica", "shop") is False
    product = ProductFactory(slug="written")
    assert _one("default", "SELECT COUNT(*) FROM shop_product WHERE slug = 'written'") == 1
    wait_for_replica()
    assert _one("replica", "SELECT COUNT(*) FROM shop_product WHERE slug = 'written'") == 1
    assert router.allow_relation(product, Order()) is True


def test_a_paused_replica_sends_the_pages_to_the_primary(renamed):
    client = Client()
    assert OLD in page(client, renamed)
    with replica_paused():
        started = time.monotonic()
        assert NEW in page(client, renamed)  # a ping on the open connection times out, then a connect
        first = time.monotonic() - started
        started = time.monotonic()
        assert NEW in page(client, renamed)
        assert client.get(reverse("shop:product-list")).status_code == 200
        assert client.get(reverse("api:product-list")).status_code == 200
        later = time.monotonic() - started
    read_timeout = settings.DATABASES["replica"]["OPTIONS"]["read_timeout"]
    connect_timeout = settings.DATABASES["replica"]["OPTIONS"]["connect_timeout"]
    assert first < read_timeout + connect_timeout + 2
    assert later < 1.0  # left out: no timeout is waited for again
    time.sleep(settings.DATABASE_REPLICA_RETRY_SECONDS)
    assert OLD in page(client, renamed)  # back once it answers, after the retry delay


def test_a_replica_that_refuses_connections_sends_the_pages_to_the_primary(renamed):
    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alias = connections["replica"]
    real_port = alias.settings_dict["PORT"]
    alias.close()
    alias.settings_dict["PORT"] = port
    try:
        assert NEW in page(Client(), renamed)
        assert db_router.health.down_until["replica"] > time.monotonic()
    finally:
        alias.close()
        alias.settings_dict["PORT"] = real_port


def test_a_replica_that_stopped_applying_is_left_out_under_the_lag_bound(renamed, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5
    assert NEW in page(Client(), renamed)  # Seconds_Behind_Master is NULL: not replicating
    assert db_router.health.down_until["replica"] > time.monotonic()


def test_a_replica_within_the_lag_bound_is_used(real_replica, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5
    product = ProductFactory(slug="fresh", name=OLD)
    wait_for_replica()
    selects = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_SELECT'"
    before = int(_one("replica", selects))
    assert OLD in page(Client(), product)
    assert int(_one("replica", selects)) - before >= 2  # the page's read, besides this query itself
    assert "replica" not in db_router.health.down_until

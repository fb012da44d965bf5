"""Reconciliation (reconciliation) against the real MariaDB and Redis.

Every discrepancy is planted around the services, with raw SQL or raw Redis commands,
as a bug or an outage would leave it; the check must name it with the right kind and
objects, and a sale sold through the real purchase path must come out clean.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from locks import MySQLNamedLock
from orders import services as order_services
from orders.models import Order
from reconciliation import checks, runner
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.tasks import reconcile_ended_sales, reconcile_nightly
from seckill import intents, keys, purchase, services, stock, writer
from seckill.errors import SoldOut
from seckill.models import SeckillActivity
from seckill.tests.conftest import create_customers, create_sale
from seckill.tests.invariants import assert_invariants
from shop.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


# --- helpers: buy through the real path, plant problems around it -------------------------


def buy(activity, user, quantity=1):
    return purchase.purchase(activity_id=activity.pk, user=user, quantity=quantity).order


def ended_sale(*, ended_s_ago, stock=2):
    """A sale that was published and loaded into Redis before it started, as warm-up does."""
    activity = create_sale(stock=stock, starts_in=-(3600 + ended_s_ago), duration=3600, warm=False)
    services.activity_publish(activity_id=activity.pk)
    services.activity_warm(activity_id=activity.pk)
    return SeckillActivity.objects.get(pk=activity.pk)


def reconcile(**options):
    return runner.reconcile(triggered_by="test", **options)


def found(outcome, kind, **detail):
    """The findings of one kind whose detail contains `detail`."""
    return [
        f
        for f in outcome.findings
        if f.kind == kind and all(f.detail.get(name) == value for name, value in detail.items())
    ]


def plant_sale_order(activity_id, user, *, quantity=1, status="paid", reservation_id=None):
    """An order and its sale link written with raw SQL, as a path around the services would."""
    number = f"FS-INJ-{uuid.uuid4().hex[:8].upper()}"
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_order (number, status, source, total, version, expires_at, payment_reference, "
            "created_at, updated_at, user_id) VALUES (%s, %s, 'seckill', 60.00, 1, %s, '', %s, %s, %s)",
            [number, status, now + timedelta(minutes=15), now, now, user.pk],
        )
        order_id = cursor.lastrowid
        product_id = SeckillActivity.objects.filter(pk=activity_id).values_list("product_id", flat=True).first()
        if product_id is not None:
            cursor.execute(
                "INSERT INTO orders_orderitem (quantity, unit_price, order_id, product_id) VALUES (%s, 60.00, %s, %s)",
                [quantity, order_id, product_id],
            )
        cursor.execute(
            "INSERT INTO seckill_seckillorder (quantity, reservation_id, created_at, activity_id, "
            "order_id, user_id) VALUES (%s, %s, %s, %s, %s, %s)",
            [quantity, reservation_id or uuid.uuid4().hex, now, activity_id, order_id, user.pk],
        )
    return number


def plant_reservation(activity, user, *, quantity=1, age_s=600):
    """A reservation as purchase.lua writes it, whose order never came (a worker died)."""
    client = stock.redis()
    reservation_id = uuid.uuid4().hex
    client.decrby(keys.stock(activity.pk), quantity)
    client.hincrby(keys.users(activity.pk), user.pk, quantity)
    client.hset(
        keys.reservations(activity.pk), reservation_id, f"{user.pk}:{quantity}:{stock.server_time_ms() - age_s * 1000}"
    )
    return reservation_id


def command(*args):
    """(exit code, stdout, stderr) of `manage.py reconcile` called in-process."""
    out, err = StringIO(), StringIO()
    try:
        call_command("reconcile", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


# --- a clean sale ------------------------------------------------------------------------


def test_a_sale_sold_paid_expired_and_cancelled_through_the_services_reports_nothing():
    activity = create_sale(stock=6, limit=2)
    buyers = create_customers(5)
    orders = [buy(activity, buyers[0], 2), *(buy(activity, u) for u in buyers[1:4])]
    order_services.order_pay(order=orders[0])
    order_services.order_pay(order=orders[1])
    order_services.order_expire(order=orders[2], now=orders[2].expires_at + timedelta(seconds=1))
    order_services.order_cancel(order=orders[3])
    buy(activity, buyers[4])
    plant_reservation(activity, buyers[4], age_s=1)  # a purchase in flight right now: not stranded

    outcome = reconcile()

    assert outcome.findings == [] and outcome.errors == []
    assert outcome.run.status == ReconciliationRun.Status.CLEAN and outcome.run.found == 0
    assert not Discrepancy.objects.exists()
    assert_invariants(activity, expect_sold=4)


# --- each kind, planted ------------------------------------------------------------------


def test_oversold_names_the_sale_and_the_orders_the_stock_could_not_cover():
    activity = create_sale(stock=2)
    buyers = create_customers(3)
    buy(activity, buyers[0])
    buy(activity, buyers[1])
    extra = plant_sale_order(activity.pk, buyers[2])

    outcome = reconcile()

    [oversold] = found(outcome, "oversold")
    assert oversold.activity_id == activity.pk and oversold.order_numbers == (extra,)
    assert oversold.detail == {"live_units": 3, "stock_total": 2, "excess": 1}
    # the DB pool and the Redis books no longer add up either
    assert found(outcome, "stock_drift", reason="db_pool")[0].detail["difference"] == 1
    assert found(outcome, "stock_drift", reason="redis")[0].detail["difference"] == 1
    row = Discrepancy.objects.get(kind="oversold")
    assert (row.activity_id, row.order_numbers, row.run_id, row.state) == (activity.pk, [extra], outcome.run.pk, "open")


def test_over_limit_names_the_customer_and_all_their_live_orders():
    activity = create_sale(stock=5, limit=1)
    customer, other = create_customers(2)
    first = buy(activity, customer)
    buy(activity, other)
    second = plant_sale_order(activity.pk, customer)
    plant_sale_order(activity.pk, other, status="expired")  # dead orders hold nothing

    outcome = reconcile()

    [over] = found(outcome, "over_limit")
    assert over.activity_id == activity.pk
    assert over.detail == {"user_id": customer.pk, "units": 2, "limit": 1}
    assert set(over.order_numbers) == {first.number, second}


def test_two_orders_for_one_reservation_are_found_once_the_unique_index_is_gone():
    activity = create_sale(stock=5)
    customer = create_customers(1)[0]
    order = buy(activity, customer)
    reservation_id = order.seckill.reservation_id
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE seckill_seckillorder DROP INDEX reservation_id")
    try:
        twin = plant_sale_order(activity.pk, customer, reservation_id=reservation_id)
        outcome = reconcile()
        [duplicate] = found(outcome, "duplicate_order", reason="same_reservation")
        assert duplicate.activity_id == activity.pk and duplicate.order_numbers == (order.number, twin)
        assert duplicate.detail["reservation_id"] == reservation_id and duplicate.detail["user_id"] == customer.pk
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM seckill_seckillorder WHERE reservation_id = %s AND order_id <> %s",
                [reservation_id, order.pk],
            )
            cursor.execute("ALTER TABLE seckill_seckillorder ADD UNIQUE INDEX reservation_id (reservation_id)")


def test_two_live_sale_orders_under_one_idempotency_key_are_found_once_the_unique_index_is_gone():
    activity = create_sale(stock=5, limit=2)
    customer = create_customers(1)[0]
    order = purchase.purchase(activity_id=activity.pk, user=customer, quantity=1, idempotency_key="tab-1").order
    twin = plant_sale_order(activity.pk, customer)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE orders_order DROP INDEX order_unique_idempotency_key")
    try:
        Order.objects.filter(number=twin).update(idempotency_key=order.idempotency_key)  # stored scoped to the sale
        outcome = reconcile()
        [duplicate] = found(outcome, "duplicate_order", reason="same_idempotency_key")
        assert duplicate.activity_id == activity.pk and duplicate.order_numbers == (order.number, twin)
    finally:
        Order.objects.filter(number=twin).update(idempotency_key=None)
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE orders_order ADD UNIQUE INDEX order_unique_idempotency_key (user_id, idempotency_key)"
            )


def test_redis_counter_drift_is_found_and_fix_rewrites_it_from_the_database():
    activity = create_sale(stock=5)
    buyers = create_customers(2)
    buy(activity, buyers[0])
    buy(activity, buyers[1])
    stock.redis().incrby(keys.stock(activity.pk), 2)  # two units that do not exist, on sale

    outcome = reconcile(fix=True)

    [drift] = found(outcome, "stock_drift")
    assert drift.activity_id == activity.pk
    assert drift.detail == {
        "reason": "redis",
        "stock_total": 5,
        "live_units": 2,
        "redis_remaining": 5,
        "open_reservation_units": 0,
        "difference": 2,
    }
    assert outcome.repairs == [
        {
            "action": "resync_redis",
            "activity_id": activity.pk,
            "remaining_before": 5,
            "remaining_after": 3,
            "conservation_holds": True,
        }
    ]
    assert stock.remaining(activity.pk) == 3
    assert_invariants(activity, expect_sold=2)
    row = Discrepancy.objects.get(kind="stock_drift")
    assert row.state == "resolved" and f"run {outcome.run.pk}" in row.resolution and row.resolved_by is None
    assert reconcile().findings == []


def test_a_sale_missing_from_redis_is_a_finding_of_its_own_never_zero_left():
    live = create_sale(stock=4)
    buy(live, create_customers(1)[0])
    stock.redis().delete(*keys.all_keys(live.pk))
    long_gone = create_sale(stock=3, starts_in=-30 * 86400, duration=3600, warm=False)
    SeckillActivity.objects.filter(pk=long_gone.pk).update(published_at=long_gone.starts_at, stock_available=3)

    outcome = reconcile(fix=True)

    assert [(f.kind, f.activity_id, f.detail) for f in outcome.findings] == [
        ("stock_drift", live.pk, {"reason": "redis_missing"})
    ]
    assert any("checked in the database only" in note for note in outcome.notes)  # the old sale: a note
    assert stock.remaining(live.pk) == 3  # --fix loaded it from the database
    assert_invariants(live, expect_sold=1)


def test_a_stranded_reservation_is_found_and_after_fix_the_unit_sells_again(settings):
    settings.SECKILL_SOLD_OUT_RECHECK_SECONDS = 0
    activity = create_sale(stock=2, limit=1)
    ghost, first, second = create_customers(3)
    stranded = plant_reservation(activity, ghost, age_s=600)
    buy(activity, first)
    with pytest.raises(SoldOut):
        buy(activity, second)

    found_only = reconcile()
    [finding] = found(found_only, "stranded_reservation")
    assert finding.activity_id == activity.pk and finding.detail["units"] == 1
    assert [r["reservation_id"] for r in finding.detail["reservations"]] == [stranded]
    assert found_only.findings == [finding]  # an open reservation is part of the books: no drift

    fixed = reconcile(fix=True)
    assert fixed.repairs == [
        {
            "action": "release_stranded",
            "activity_id": activity.pk,
            "reservation_ids": [stranded],
            "conservation_holds": True,
        }
    ]
    assert Discrepancy.objects.get(kind="stranded_reservation").state == "resolved"
    assert buy(activity, second) is not None  # the freed unit is on sale again
    assert_invariants(activity, expect_sold=2)
    assert reconcile().findings == []


def test_intents_waiting_for_the_writer_and_reservations_inside_the_grace_period_are_not_stranded(settings):
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5)
    waiting, in_flight = create_customers(2)
    buy(activity, waiting)  # accepted, its intent waits: no writer runs in reserved mode here
    rid = next(iter(stock.reservations(activity.pk))).reservation_id
    stock.redis().hset(keys.reservations(activity.pk), rid, f"{waiting.pk}:1:1")  # as if reserved long ago
    plant_reservation(activity, in_flight, age_s=5)

    assert reconcile().findings == []


def test_an_old_intent_written_while_the_check_runs_is_not_reported_stranded(settings, monkeypatch):
    """The writer commits and settles an old intent after the open entries were read and
    before the stream is: its order is there, the unit is sold, nothing is stranded."""
    settings.SECKILL_ACK = "reserved"
    activity = create_sale(stock=5)
    [customer] = create_customers(1)
    buy(activity, customer)
    rid = next(iter(stock.reservations(activity.pk))).reservation_id
    stock.redis().hset(keys.reservations(activity.pk), rid, f"{customer.pk}:1:1")  # as if reserved long ago
    read_stream = intents.waiting_reservations

    def writer_then_stream(activity_id, *args, **kwargs):
        writer.drain(activity_id)
        return read_stream(activity_id, *args, **kwargs)

    monkeypatch.setattr(intents, "waiting_reservations", writer_then_stream)
    outcome = reconcile(fix=True)
    assert found(outcome, "stranded_reservation") == [] and outcome.repairs == []
    assert Order.objects.count() == 1 and stock.remaining(activity.pk) == 4


def test_orders_of_a_sale_that_does_not_exist_are_found():
    customer = create_customers(1)[0]
    number = plant_sale_order(987654, customer)

    outcome = reconcile()

    [orphan] = found(outcome, "stock_drift", reason="missing_sale")
    assert orphan.activity_id == 987654 and orphan.order_numbers == (number,)
    assert orphan.detail["rows_in"] == ["orders"]


def test_negative_product_stock_is_found():
    activity = create_sale(stock=2)
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION check_constraint_checks = 0")
        try:
            cursor.execute("UPDATE shop_product SET stock = -3 WHERE id = %s", [activity.product_id])
        finally:
            cursor.execute("SET SESSION check_constraint_checks = 1")

    [negative] = found(reconcile(), "negative_stock")
    assert negative.detail["product_id"] == activity.product_id and negative.detail["stock"] == -3
    assert negative.activity_id is None and negative.order_numbers == ()
    # a run limited to the sale looks at that sale's product too
    assert found(reconcile(activity_ids=[activity.pk]), "negative_stock")


def test_a_run_limited_to_one_sale_reports_only_that_sale():
    mine, theirs = create_sale(stock=2), create_sale(stock=2)
    for activity in (mine, theirs):
        stock.redis().incrby(keys.stock(activity.pk), 1)

    outcome = reconcile(activity_ids=[mine.pk])

    assert [(f.kind, f.activity_id) for f in outcome.findings] == [("stock_drift", mine.pk)]
    assert outcome.run.scope == {"activity_ids": [mine.pk], "since": None}


def test_since_leaves_out_sales_that_ended_before_it():
    old = ended_sale(ended_s_ago=3 * 86400)
    recent = create_sale(stock=2)
    assert stock.remaining(old.pk) == 2  # still in Redis: left out because of --since, not for lack of state
    for activity in (old, recent):
        stock.redis().incrby(keys.stock(activity.pk), 1)

    outcome = reconcile(since=timezone.now() - timedelta(days=1))

    assert {f.activity_id for f in outcome.findings} == {recent.pk}


def test_a_problem_seen_by_two_runs_is_one_row_and_staff_resolution_sticks():
    activity = create_sale(stock=3)
    stock.redis().incrby(keys.stock(activity.pk), 1)
    first = reconcile()
    row = Discrepancy.objects.get()
    staff = create_customers(1, prefix="staff")[0]
    runner.discrepancies_resolve(discrepancy_ids=[row.pk], user=staff)

    second = reconcile()

    row.refresh_from_db()
    assert Discrepancy.objects.count() == 1 and len(second.findings) == 1
    assert (row.run_id, row.last_run_id, row.seen_count) == (first.run.pk, second.run.pk, 2)
    assert row.state == "resolved" and row.resolved_by == staff
    stock.redis().incrby(keys.stock(activity.pk), 1)  # the problem changed: a new row, open
    reconcile()
    assert Discrepancy.objects.filter(state="open").count() == 1


def test_a_check_that_cannot_run_fails_the_run_but_the_others_still_report(monkeypatch):
    activity = create_sale(stock=2)
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION check_constraint_checks = 0")
        cursor.execute("UPDATE shop_product SET stock = -1 WHERE id = %s", [activity.product_id])
        cursor.execute("SET SESSION check_constraint_checks = 1")

    def redis_down(ids):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(stock, "remaining_many", redis_down)
    outcome = reconcile()

    assert [f.kind for f in outcome.findings] == ["negative_stock"]
    assert outcome.run.status == "failed" and "Redis is down" in outcome.run.error
    code, _, _ = command()
    assert code == 2


# --- the command -------------------------------------------------------------------------


def test_json_output_and_exit_codes_follow_the_contract():
    activity = create_sale(stock=1)
    buyers = create_customers(2)
    buy(activity, buyers[0])

    code, out, _ = command("--json")
    clean = json.loads(out)
    assert code == 0 and clean["discrepancies"] == [] and clean["status"] == "clean"
    assert ReconciliationRun.objects.filter(pk=clean["run_id"], status="clean").exists()

    extra = plant_sale_order(activity.pk, buyers[1])
    code, out, _ = command("--json", "--activity", str(activity.pk))
    report = json.loads(out)
    assert code == 1 and report["run_id"] == ReconciliationRun.objects.latest("id").pk
    oversold = next(d for d in report["discrepancies"] if d["kind"] == "oversold")
    assert oversold["activity_id"] == activity.pk and oversold["order_numbers"] == [extra]
    assert oversold["detail"] == {"live_units": 2, "stock_total": 1, "excess": 1}
    assert {d["kind"] for d in report["discrepancies"]} == {"oversold", "stock_drift"}
    assert all(set(d) >= {"kind", "detail"} for d in report["discrepancies"])

    code, out, _ = command("--json", "--activity", "999999")
    assert code == 2 and json.loads(out)["error"] == "No flash sale with id 999999."
    code, _, _ = command("--since", "yesterday")
    assert code == 2


def test_the_table_names_each_problem_and_where_to_see_it_in_the_admin():
    activity = create_sale(stock=3)
    stock.redis().incrby(keys.stock(activity.pk), 1)

    code, out, err = command("-v", "2")

    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("Reconciliation run ") and "1 discrepancies" in lines[0]
    assert lines[2].split() == ["KIND", "SALE", "ORDERS", "SUMMARY"]
    assert lines[3].split()[:3] == ["stock_drift", str(activity.pk), "-"] and "(+1)" in lines[3]
    assert "/admin/reconciliation/discrepancy/?last_run__id__exact=" in out
    assert "[7/7] done" in err  # progress, on stderr so that --json stays parseable


def test_dry_run_records_nothing_and_lists_the_repairs_it_would_make():
    activity = create_sale(stock=3)
    stock.redis().incrby(keys.stock(activity.pk), 1)

    code, out, _ = command("--json", "--dry-run", "--fix")

    report = json.loads(out)
    assert code == 1 and report["run_id"] is None and report["dry_run"] is True
    assert report["repairs"] == [{"action": "resync_redis", "activity_id": activity.pk, "planned": True}]
    assert not ReconciliationRun.objects.exists() and not Discrepancy.objects.exists()
    assert stock.remaining(activity.pk) == 4  # untouched


def test_fix_leaves_a_sale_whose_db_pool_is_wrong_to_staff():
    activity = create_sale(stock=3)
    buyers = create_customers(2)
    buy(activity, buyers[0])
    plant_sale_order(activity.pk, buyers[1])  # the DB pool did not see this order: it is off by one

    outcome = reconcile(fix=True)

    assert {(f.kind, f.detail.get("reason")) for f in outcome.findings} == {
        ("stock_drift", "db_pool"),
        ("stock_drift", "redis"),
    }
    assert outcome.repairs[0]["action"] == "none" and "DB pool" in outcome.repairs[0]["reason"]
    assert stock.remaining(activity.pk) == 2  # not rewritten from a pool known to be wrong
    assert Order.objects.count() == 2  # and no order was touched
    assert not Discrepancy.objects.filter(state="resolved").exists()


def test_exit_codes_from_a_real_process():
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "LOG_LEVEL": "ERROR",
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "reconcile", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    activity = create_sale(stock=2)
    assert run().returncode == 0
    stock.redis().incrby(keys.stock(activity.pk), 1)
    found_one = run("--json")
    assert found_one.returncode == 1 and json.loads(found_one.stdout)["discrepancies"][0]["kind"] == "stock_drift"
    missing = run("--activity", "424242")
    assert missing.returncode == 2 and "No flash sale with id 424242" in missing.stderr


# --- one run at a time -------------------------------------------------------------------


def test_two_runs_started_together_make_one_run(monkeypatch):
    create_sale(stock=2)

    def slow(scope):  # keeps the first run inside its lock while the second one knocks
        time.sleep(2.0)
        return []

    monkeypatch.setattr(checks, "CHECKS", (*checks.CHECKS, ("slow", slow)))

    results = run_concurrently(lambda i: reconcile(), 2)

    assert ReconciliationRun.objects.count() == 1
    assert sorted(type(r).__name__ for r in results) == ["Outcome", "ReconciliationBusy"]


def test_two_beat_schedulers_firing_the_nightly_run_make_one_run():
    create_sale(stock=2)
    slot = runner.nightly_slot()

    results = run_concurrently(lambda i: runner.reconcile_scheduled(slot=slot, triggered_by=f"beat {i}"), 2)

    assert ReconciliationRun.objects.filter(slot=slot).count() == 1 and ReconciliationRun.objects.count() == 1
    assert sum(isinstance(r, runner.Outcome) for r in results) == 1
    assert all(r is None or isinstance(r, runner.Outcome | runner.ReconciliationBusy) for r in results)
    # the same task fired again later that night does nothing
    reconcile_nightly.delay()
    assert ReconciliationRun.objects.count() == 1


def test_a_run_is_refused_while_another_holds_the_lock():
    lock = MySQLNamedLock(runner.LOCK_NAME)
    assert lock.acquire()
    try:
        with pytest.raises(runner.ReconciliationBusy):
            reconcile()
        code, _, _ = command()
        assert code == 2
    finally:
        lock.release()
    assert reconcile().run is not None


def test_the_nightly_task_retries_while_a_manual_run_holds_the_lock_instead_of_skipping_the_night():
    lock = MySQLNamedLock(runner.LOCK_NAME)
    assert lock.acquire()
    try:
        with pytest.raises(Retry) as retry:
            reconcile_nightly.delay()
        assert retry.value.when == 300 and isinstance(retry.value.exc, runner.ReconciliationBusy)
    finally:
        lock.release()
    assert not ReconciliationRun.objects.exists()
    reconcile_nightly.delay()
    assert ReconciliationRun.objects.get().slot == runner.nightly_slot()


def test_a_run_left_running_by_a_dead_process_is_marked_failed_by_the_next():
    dead = ReconciliationRun.objects.create(triggered_by="worker that died")
    reconcile()
    dead.refresh_from_db()
    assert dead.status == "failed" and "abandoned" in dead.error


def test_a_sale_is_reconciled_once_a_few_minutes_after_it_ends():
    ended = ended_sale(ended_s_ago=600)
    just_ended = ended_sale(ended_s_ago=60)  # too early: purchases in flight may still settle
    create_sale(stock=2)  # still live

    assert runner.sales_due_after_end() == [ended.pk]
    reconcile_ended_sales.delay()
    reconcile_ended_sales.delay()

    run = ReconciliationRun.objects.get()
    assert run.slot == f"sale-ended:{ended.pk}" and run.scope["activity_ids"] == [ended.pk]
    assert run.triggered_by == "beat:sale-ended" and just_ended.pk not in run.scope["activity_ids"]


# --- staff and monitoring ----------------------------------------------------------------


@pytest.fixture
def admin_client_(staff):
    client = Client()
    client.force_login(staff)
    return client


def test_admin_lists_filters_links_the_orders_and_marks_resolved(admin_client_, staff):
    activity = create_sale(stock=1)
    buyers = create_customers(2)
    sold = buy(activity, buyers[0])
    extra = plant_sale_order(activity.pk, buyers[1])
    plant_sale_order(987654, buyers[1])  # and an orphan, whose sale cannot be shown
    reconcile()
    oversold = Discrepancy.objects.get(kind="oversold")

    listing = admin_client_.get(
        f"/admin/reconciliation/discrepancy/?kind=oversold&state=open&activity__id__exact={activity.pk}"
    )
    assert listing.status_code == 200
    body = listing.content.decode()
    assert f"?number__in={extra}" in body and "units in live orders" in body
    assert admin_client_.get("/admin/reconciliation/discrepancy/").status_code == 200
    assert "(missing)" in admin_client_.get("/admin/reconciliation/discrepancy/?kind=stock_drift").content.decode()

    page = admin_client_.get(f"/admin/reconciliation/discrepancy/{oversold.pk}/change/").content.decode()
    extra_order = Order.objects.get(number=extra)
    assert f"/admin/orders/order/{extra_order.pk}/change/" in page and sold.number not in page
    assert admin_client_.get(f"/admin/orders/order/?number__in={extra}").status_code == 200

    response = admin_client_.post(
        "/admin/reconciliation/discrepancy/",
        {"action": "mark_resolved", "_selected_action": [oversold.pk]},
        follow=True,
    )
    assert response.status_code == 200
    oversold.refresh_from_db()
    assert oversold.state == "resolved" and oversold.resolved_by == staff and oversold.resolved_at is not None
    assert admin_client_.get("/admin/reconciliation/reconciliationrun/").status_code == 200
    by_run = admin_client_.get(f"/admin/reconciliation/discrepancy/?last_run__id__exact={oversold.last_run_id}")
    assert by_run.status_code == 200 and f"?number__in={extra}" in by_run.content.decode()


def test_healthz_and_metrics_show_open_discrepancies_without_failing_health(client, staff):
    activity = create_sale(stock=3)
    stock.redis().incrby(keys.stock(activity.pk), 1)
    reconcile()

    health = client.get("/healthz")
    assert health.status_code == 200
    summary = health.json()["reconciliation"]
    assert summary["open_discrepancies"] == 1 and summary["open_by_kind"]["stock_drift"] == 1
    assert summary["last_run"]["status"] == "found" and summary["last_run"]["found"] == 1

    client.force_login(staff)
    metrics = client.get("/metrics").content.decode()
    assert 'seckill_reconciliation_open_discrepancies{kind="stock_drift"} 1.0' in metrics
    assert 'seckill_reconciliation_open_discrepancies{kind="oversold"} 0.0' in metrics
    assert 'seckill_reconciliation_last_run_status{status="found"} 1.0' in metrics
    assert "seckill_lock_" in metrics  # the lock metrics are still there beside them

"""A finding a later run no longer sees is resolved by that run (reconciliation/recording.py)."""

import pytest
from django.test import Client

from reconciliation import runner
from reconciliation.models import Discrepancy
from seckill import keys, services, stock
from seckill.tests.conftest import create_customers, create_sale

pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(**options):
    return runner.reconcile(triggered_by="test", **options)


def drift(activity, units=1):
    stock.redis().incrby(keys.stock(activity.pk), units)


def test_a_finding_fixed_outside_the_run_is_resolved_by_the_next_clean_run(client, staff):
    activity = create_sale(stock=3)
    drift(activity)
    first = reconcile()
    row = Discrepancy.objects.get()
    assert client.get("/healthz").json()["reconciliation"]["open_discrepancies"] == 1

    services.activity_resync(activity_id=activity.pk)  # the admin's "Re-sync Redis from the database"
    second = reconcile()

    row.refresh_from_db()
    assert second.findings == []
    assert row.state == "resolved" and row.resolved_by_run_id == second.run.pk and row.resolved_by is None
    assert row.resolution == f"no longer found by run {second.run.pk}" and row.resolved_at is not None
    assert row.last_run_id == first.run.pk  # its last sighting is unchanged
    assert client.get("/healthz").json()["reconciliation"]["open_discrepancies"] == 0


def test_run_links_keep_showing_what_each_run_saw_after_later_runs(staff):
    activity = create_sale(stock=3)
    drift(activity)
    first, second = reconcile(), reconcile()
    row = Discrepancy.objects.get()
    assert row.last_run_id == second.run.pk
    services.activity_resync(activity_id=activity.pk)
    third = reconcile()

    admin = Client()
    admin.force_login(staff)
    for run in (first.run, second.run):
        page = admin.get(f"/admin/reconciliation/reconciliationrun/{run.pk}/change/").content.decode()
        link = f"/admin/reconciliation/discrepancy/?seen_by__id__exact={run.pk}"
        assert link.replace("&", "&amp;") in page
        listing = admin.get(link)
        assert listing.status_code == 200 and "1 discrepancy" in listing.content.decode(), run.pk
    assert (
        "0 discrepancies"
        in admin.get(f"/admin/reconciliation/discrepancy/?seen_by__id__exact={third.run.pk}").content.decode()
    )
    resolved = admin.get(f"/admin/reconciliation/discrepancy/?resolved_by_run__id__exact={third.run.pk}")
    assert resolved.status_code == 200 and "1 discrepancy" in resolved.content.decode()
    assert set(row.seen_by.values_list("pk", flat=True)) == {first.run.pk, second.run.pk}


def test_a_run_limited_to_one_sale_resolves_only_within_its_scope():
    one, other = create_sale(stock=3), create_sale(stock=4)
    drift(one)
    drift(other)
    reconcile()
    assert Discrepancy.objects.filter(state="open").count() == 2
    services.activity_resync(activity_id=one.pk)
    services.activity_resync(activity_id=other.pk)

    scoped = reconcile(activity_ids=[one.pk])

    states = dict(Discrepancy.objects.values_list("activity_id", "state"))
    assert states == {one.pk: "resolved", other.pk: "open"}
    assert Discrepancy.objects.get(activity_id=one.pk).resolved_by_run_id == scoped.run.pk


def test_a_run_with_a_failed_check_resolves_nothing(monkeypatch):
    activity = create_sale(stock=3)
    drift(activity)
    reconcile()
    services.activity_resync(activity_id=activity.pk)

    def broken(scope):
        raise RuntimeError("Redis went away")

    monkeypatch.setattr(runner.checks, "CHECKS", (*runner.checks.CHECKS, ("broken", broken)))
    failed = reconcile()

    assert failed.status == "failed"
    assert Discrepancy.objects.get().state == "open"


def test_staff_resolution_sticks_but_a_problem_a_run_resolved_reopens_when_it_comes_back():
    activity = create_sale(stock=3)
    buyer = create_customers(1)[0]
    drift(activity)
    reconcile()
    services.activity_resync(activity_id=activity.pk)
    reconcile()
    row = Discrepancy.objects.get()
    assert row.state == "resolved"

    drift(activity)  # the very same drift again: same fingerprint
    back = reconcile()
    row.refresh_from_db()
    assert row.state == "open" and row.resolved_by_run is None and row.resolution == ""
    assert row.last_run_id == back.run.pk and row.seen_count == 2

    runner.discrepancies_resolve(discrepancy_ids=[row.pk], user=buyer)
    reconcile()
    row.refresh_from_db()
    assert row.state == "resolved" and row.resolved_by == buyer

"""Run every reconciliation check once, record what was found, repair what is safe.

Used the same way by `manage.py reconcile`, the nightly Celery task and the task that
reconciles a sale shortly after it ends.

- One run at a time: by default (settings.LOCKS) a MySQL named lock on a connection of its own. It
  has no lease to outlive, so a run of any length keeps it, and it is freed the moment
  a crashed worker's connection closes (docs/locks.md). A second run finds it taken
  and is refused (ReconciliationBusy) instead of reporting the same problems twice.
- One run per schedule slot: a scheduled run claims its slot ("nightly:<date>") with
  a unique index, so two beat schedulers firing the same job, at once or an hour
  apart, produce one run.
- Repairs (`fix=True`) only give stranded reservations back and re-sync Redis from the
  database, through the same services the beat jobs and the admin use; orders are
  never deleted or merged, and a sale whose DB pool is itself wrong is left alone,
  since re-syncing Redis from a wrong pool would spread the error.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from locks import LockAcquireTimeout, held, lock_for
from reconciliation import checks, recording
from reconciliation.models import Discrepancy, DiscrepancyKind, ReconciliationRun
from seckill import buckets, services, stock
from seckill.models import SeckillActivity

log = logging.getLogger(__name__)

LOCK_NAME = "seckill-reconcile"
# A sale is reconciled on its own this long after it ends: late enough for in-flight
# purchases to settle, early enough for staff to act while customers still remember.
AFTER_END_DELAY = timedelta(minutes=5)
AFTER_END_WINDOW = timedelta(minutes=60)
# Drift kinds a re-sync from the database can repair (not db_pool, not missing_sale).
_RESYNCABLE = {"redis", "redis_missing"}


class ReconciliationBusy(Exception):
    """Another run holds the reconciliation lock."""


class AlreadyReconciled(Exception):
    """The schedule slot was claimed by an earlier run."""


@dataclass
class Outcome:
    run: ReconciliationRun | None
    findings: list
    discrepancies: dict = field(default_factory=dict)  # fingerprint -> Discrepancy (empty on a dry run)
    repairs: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    elapsed_s: float = 0.0
    dry_run: bool = False

    @property
    def status(self):
        if self.errors:
            return ReconciliationRun.Status.FAILED
        return ReconciliationRun.Status.FOUND if self.findings else ReconciliationRun.Status.CLEAN

    @property
    def counts(self):
        counts = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts


def reconcile(
    *,
    activity_ids=None,
    since=None,
    fix=False,
    dry_run=False,
    triggered_by="",
    slot=None,
    grace_seconds=None,
    progress=None,
):
    """Run the checks and return an Outcome.

    A dry run takes no lock and writes nothing (with `fix`, it lists the repairs it would
    make). Otherwise the run is recorded; raises ReconciliationBusy when another run is
    in progress and AlreadyReconciled when `slot` was claimed before.
    """
    scope = checks.Scope(activity_ids=activity_ids, since=since, grace_seconds=grace_seconds)
    if dry_run:
        started = time.monotonic()
        findings, errors = _run_checks(scope, progress)
        repairs = _plan_repairs(findings) if fix else []
        elapsed = time.monotonic() - started
        return Outcome(
            None, findings, repairs=repairs, notes=scope.notes, errors=errors, elapsed_s=elapsed, dry_run=True
        )

    lock = lock_for("reconciliation", LOCK_NAME, metric_label="seckill_reconcile")  # settings.LOCKS
    try:
        with held(lock, blocking=False, lost_message="its DB connection broke before the run ended"):
            return _locked_run(scope, fix=fix, triggered_by=triggered_by, slot=slot, progress=progress)
    except LockAcquireTimeout as exc:
        raise ReconciliationBusy("Another reconciliation run is in progress.") from exc


def _locked_run(scope, *, fix, triggered_by, slot, progress):
    run = _start_run(scope, fix=fix, triggered_by=triggered_by, slot=slot)
    started = time.monotonic()
    try:
        findings, errors = _run_checks(scope, progress)
        recorded = recording.record(run, findings)
        repairs = _repair(scope, run, findings, recorded) if fix else []
        recording.resolve_unseen(scope, run, findings, errors)
    except Exception as exc:
        _finish(run, status=ReconciliationRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    outcome = Outcome(run, findings, recorded, repairs, scope.notes, errors, time.monotonic() - started)
    _finish(
        run,
        status=outcome.status,
        found=len(findings),
        counts=outcome.counts,
        repairs=repairs,
        notes=scope.notes,
        error="\n".join(errors),
    )
    return outcome


def reconcile_scheduled(*, slot, triggered_by, activity_ids=None):
    """A run for a schedule slot, once: None if the slot is taken already. Raises
    ReconciliationBusy if another run is in progress (the caller tries again later)."""
    if ReconciliationRun.objects.filter(slot=slot).exists():
        return None
    try:
        return reconcile(activity_ids=activity_ids, triggered_by=triggered_by, slot=slot)
    except AlreadyReconciled:
        return None


def nightly_slot(now=None):
    return f"nightly:{timezone.localdate(now or timezone.now()).isoformat()}"


def sale_ended_slot(activity_id):
    return f"sale-ended:{activity_id}"


def sales_due_after_end(now=None):
    """Published sales that ended between 5 and 60 minutes ago and have not had their run."""
    now = now or timezone.now()
    ids = list(
        SeckillActivity.objects.filter(
            published_at__isnull=False,
            ends_at__lte=now - AFTER_END_DELAY,
            ends_at__gt=now - AFTER_END_WINDOW,
        )
        .order_by("ends_at")
        .values_list("pk", flat=True)
    )
    claimed = set(
        ReconciliationRun.objects.filter(slot__in=[sale_ended_slot(i) for i in ids]).values_list("slot", flat=True)
    )
    return [i for i in ids if sale_ended_slot(i) not in claimed]


# --- steps ---------------------------------------------------------------------------------


def _start_run(scope, *, fix, triggered_by, slot):
    """Record the run; called with the lock held, so any run still marked running died."""
    ReconciliationRun.objects.filter(status=ReconciliationRun.Status.RUNNING).update(
        status=ReconciliationRun.Status.FAILED,
        finished_at=timezone.now(),
        error="abandoned: the process running it stopped before it finished",
    )
    try:
        with transaction.atomic():
            return ReconciliationRun.objects.create(
                triggered_by=triggered_by[:100],
                slot=slot,
                fix=fix,
                scope={
                    "activity_ids": scope.activity_ids,
                    "since": scope.since.isoformat() if scope.since else None,
                },
            )
    except IntegrityError as exc:
        raise AlreadyReconciled(slot) from exc


def _finish(run, **fields):
    for name, value in fields.items():
        setattr(run, name, value)
    run.finished_at = timezone.now()
    run.save(update_fields=[*fields, "finished_at"])


def _run_checks(scope, progress):
    """Every check, each on its own: one that fails (Redis down, say) is reported as an
    error and the others still run, so a run is never silently partial."""
    findings, errors = [], []
    started = time.monotonic()
    for index, (label, check) in enumerate(checks.CHECKS):
        if progress:
            progress(index, len(checks.CHECKS), label, time.monotonic() - started)
        try:
            findings.extend(check(scope))
        except Exception as exc:
            log.exception("reconciliation check %s failed", label)
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
    if progress:
        progress(len(checks.CHECKS), len(checks.CHECKS), "done", time.monotonic() - started)
    return _unique(findings), errors


def _unique(findings):
    seen = {}
    for finding in findings:
        seen.setdefault(finding.fingerprint, finding)
    return list(seen.values())


def _resync_targets(findings):
    """Sales whose Redis counters can be rewritten from the DB, and those that cannot."""
    unsafe = {
        f.activity_id
        for f in findings
        if f.kind == DiscrepancyKind.OVERSOLD
        or (f.kind == DiscrepancyKind.STOCK_DRIFT and f.detail["reason"] == "db_pool")
    }
    wanted = {
        f.activity_id
        for f in findings
        if f.kind == DiscrepancyKind.STOCK_DRIFT and f.detail.get("reason") in _RESYNCABLE
    }
    return sorted(wanted - unsafe), sorted(wanted & unsafe)


def _stranded_sales(findings):
    return sorted({f.activity_id for f in findings if f.kind == DiscrepancyKind.STRANDED_RESERVATION})


def _transfer_sales(findings):
    return sorted(
        {
            f.activity_id
            for f in findings
            if f.kind == DiscrepancyKind.STOCK_DRIFT and f.detail.get("reason") == "unfinished_transfer"
        }
    )


def _plan_repairs(findings):
    plan = [
        {"action": "finish_transfers", "activity_id": sale_id, "planned": True} for sale_id in _transfer_sales(findings)
    ]
    plan += [
        {"action": "release_stranded", "activity_id": sale_id, "planned": True} for sale_id in _stranded_sales(findings)
    ]
    resync, refused = _resync_targets(findings)
    plan += [{"action": "resync_redis", "activity_id": sale_id, "planned": True} for sale_id in resync]
    plan += [_refusal(sale_id) for sale_id in refused]
    return plan


def _refusal(sale_id):
    return {
        "action": "none",
        "activity_id": sale_id,
        "reason": "the DB pool disagrees with the orders; re-syncing Redis from it would spread the error",
    }


def _repair(scope, run, findings, recorded):
    """Give stranded units back, then re-sync drifted sales, then read each touched sale's
    books again: a finding is marked resolved only if the repair made it go away."""
    repairs = []
    for sale_id in _transfer_sales(findings):  # step 2 applies a transfer once, however often it runs
        finished = buckets.finish_transfers(sale_id, older_than_ms=0)
        repairs.append({"action": "finish_transfers", "activity_id": sale_id, "finished": finished})
    for sale_id in _stranded_sales(findings):
        released = services.release_stranded_reservations(activity_id=sale_id, older_than_s=scope.grace_seconds)
        repairs.append({"action": "release_stranded", "activity_id": sale_id, "reservation_ids": released})
    resync, refused = _resync_targets(findings)
    for sale_id in resync:
        before = stock.remaining(sale_id)
        services.activity_resync(activity_id=sale_id)
        repairs.append(
            {
                "action": "resync_redis",
                "activity_id": sale_id,
                "remaining_before": before,
                "remaining_after": stock.remaining(sale_id),
            }
        )
    repairs += [_refusal(sale_id) for sale_id in refused]

    balanced = {}
    for repair in repairs:
        sale_id = repair["activity_id"]
        if repair["action"] != "none" and sale_id not in balanced:
            reading = checks.conservation(sale_id)
            balanced[sale_id] = reading is not None and reading["difference"] == 0
        repair["conservation_holds"] = balanced.get(sale_id)

    released_ids = {rid for r in repairs if r["action"] == "release_stranded" for rid in r["reservation_ids"]}
    repaired = []
    for finding in findings:
        if finding.kind == DiscrepancyKind.STOCK_DRIFT and finding.detail.get("reason") == "unfinished_transfer":
            left = {t["transfer_id"] for t in buckets.in_flight(finding.activity_id)}
            if finding.detail["transfer_id"] not in left:
                repaired.append(finding.fingerprint)
        elif finding.kind == DiscrepancyKind.STRANDED_RESERVATION:
            ids = {r["reservation_id"] for r in finding.detail["reservations"]}
            if ids <= released_ids or _no_longer_open(finding.activity_id, ids):
                repaired.append(finding.fingerprint)
        elif (
            finding.kind == DiscrepancyKind.STOCK_DRIFT
            and finding.activity_id in resync
            and balanced.get(finding.activity_id)
        ):
            repaired.append(finding.fingerprint)
    Discrepancy.objects.filter(pk__in=[recorded[fp].pk for fp in repaired if fp in recorded]).update(
        state=Discrepancy.State.RESOLVED,
        resolved_by_run=run,
        resolved_at=timezone.now(),
        resolution=f"repaired by reconcile --fix (run {run.pk})",
    )
    for fp in repaired:
        if fp in recorded:
            recorded[fp].refresh_from_db()
    return repairs


def _no_longer_open(sale_id, reservation_ids):
    open_ids = {e.reservation_id for e in services.open_reservations(sale_id)[0]}
    return not (open_ids & reservation_ids)


# --- staff actions -------------------------------------------------------------------------


def discrepancies_resolve(*, discrepancy_ids, user, resolution=""):
    """Mark open discrepancies resolved by a staff member; returns how many changed.
    The conditional UPDATE leaves rows someone else resolved first untouched."""
    return Discrepancy.objects.filter(pk__in=discrepancy_ids, state=Discrepancy.State.OPEN).update(
        state=Discrepancy.State.RESOLVED,
        resolved_by=user,
        resolved_at=timezone.now(),
        resolution=resolution or f"marked resolved by {user.get_username()}",
    )

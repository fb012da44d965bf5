"""How a run's findings become Discrepancy rows, and how rows stop being open.

- A finding seen before (same fingerprint) updates its row: this run is its latest
  sighting and is added to `seen_by`. A new one gets a new row.
- A row the run does not find any more is resolved by the run (`resolve_unseen`),
  but only when the run can vouch for it:
  * every check ran (a check that failed, e.g. Redis down, finds nothing, which must
    not read as "fixed"), so a run with errors resolves nothing;
  * the row is within the run's scope: a complete run covers every row; a run limited
    to some sales (`--activity`, `--since`) only the rows of the sales it checked, and
    never rows with no sale (negative product stock, checkout duplicates), which a
    limited run does not fully check.
- A row resolved by a run (not by staff) that a later run finds again is the problem
  coming back, so it opens again. Staff's own resolution sticks: they decided.

Resolving is one conditional UPDATE (`state = open`), so a row staff resolved a moment
before keeps their resolution.
"""

from django.db import transaction
from django.utils import timezone

from reconciliation.models import Discrepancy


def record(run, findings):
    """{fingerprint: Discrepancy} of this run's findings, created or updated."""
    by_fingerprint = {f.fingerprint: f for f in findings}
    if not by_fingerprint:
        return {}
    with transaction.atomic():
        known = list(Discrepancy.objects.select_for_update().filter(fingerprint__in=list(by_fingerprint)))
        for row in known:
            finding = by_fingerprint[row.fingerprint]
            row.last_run, row.seen_count = run, row.seen_count + 1
            row.summary, row.detail = finding.summary[:255], finding.detail
            fields = ["last_run", "seen_count", "summary", "detail"]
            if row.state == Discrepancy.State.RESOLVED and row.resolved_by_id is None:  # resolved by a run: it is back
                row.state, row.resolved_at, row.resolved_by_run, row.resolution = Discrepancy.State.OPEN, None, None, ""
                fields += ["state", "resolved_at", "resolved_by_run", "resolution"]
            row.save(update_fields=fields)
        seen = {row.fingerprint for row in known}
        Discrepancy.objects.bulk_create(
            Discrepancy(
                run=run,
                last_run=run,
                kind=f.kind,
                activity_id=f.activity_id,
                order_numbers=list(f.order_numbers),
                summary=f.summary[:255],
                detail=f.detail,
                fingerprint=fp,
            )
            for fp, f in by_fingerprint.items()
            if fp not in seen
        )
        rows = {d.fingerprint: d for d in Discrepancy.objects.filter(fingerprint__in=list(by_fingerprint))}
        through = Discrepancy.seen_by.through
        through.objects.bulk_create(
            [through(discrepancy_id=d.pk, reconciliationrun_id=run.pk) for d in rows.values()], ignore_conflicts=True
        )
    return rows


def resolve_unseen(scope, run, findings, errors):
    """Resolve the open rows within the run's scope that it did not find; returns how many."""
    if errors:
        return 0
    rows = Discrepancy.objects.filter(state=Discrepancy.State.OPEN).exclude(
        fingerprint__in=[f.fingerprint for f in findings]
    )
    if scope.limited:
        rows = rows.filter(activity_id__in=list(scope.sales()))
    return rows.update(
        state=Discrepancy.State.RESOLVED,
        resolved_by_run=run,
        resolved_at=timezone.now(),
        resolution=f"no longer found by run {run.pk}",
    )

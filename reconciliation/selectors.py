"""Reads of reconciliation results for monitoring (/healthz, /metrics)."""

from django.db.models import Count

from reconciliation.models import Discrepancy, DiscrepancyKind, ReconciliationRun


def open_discrepancy_counts():
    """{kind: open discrepancies}, every kind present, from the (state, kind) index."""
    counts = dict.fromkeys(DiscrepancyKind.values, 0)
    rows = (
        Discrepancy.objects.filter(state=Discrepancy.State.OPEN)
        .order_by()
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    counts.update(rows)
    return counts


def last_finished_run():
    return ReconciliationRun.objects.exclude(status=ReconciliationRun.Status.RUNNING).order_by("-id").first()


def monitoring_summary():
    """What /healthz shows: open discrepancies by kind and the latest finished run."""
    counts = open_discrepancy_counts()
    run = last_finished_run()
    last = None
    if run is not None:
        last = {
            "id": run.pk,
            "status": run.status,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "found": run.found,
        }
    return {"open_discrepancies": sum(counts.values()), "open_by_kind": counts, "last_run": last}

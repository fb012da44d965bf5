"""What a reconciliation run found, kept for staff (admin) and monitoring (/healthz, /metrics).

A problem is recorded once, however many runs see it: `fingerprint` names the problem
(its kind, objects and amounts), so the nightly run finding the same stranded
reservation again bumps `seen_count` instead of adding a row staff would have to
resolve a second time. A problem that changes (more units drifted, another order)
gets a new fingerprint and a new row.

A problem that a later complete run no longer finds is resolved by that run
(`resolved_by_run`, reconciliation/recording.py), so the open count on /healthz is what
is wrong now. `seen_by` keeps every run that found a problem, so the admin's link from a
run to what it found keeps working after later runs have seen the same problems.
"""

from django.conf import settings
from django.db import models


class DiscrepancyKind(models.TextChoices):
    DUPLICATE_ORDER = "duplicate_order", "Duplicate order"
    OVERSOLD = "oversold", "Oversold"
    OVER_LIMIT = "over_limit", "Over the per-customer limit"
    STOCK_DRIFT = "stock_drift", "Stock drift"
    STRANDED_RESERVATION = "stranded_reservation", "Stranded reservation"
    NEGATIVE_STOCK = "negative_stock", "Negative stock"


class ReconciliationRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        CLEAN = "clean", "Clean"
        FOUND = "found", "Discrepancies found"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    triggered_by = models.CharField(max_length=100, help_text="command (with the OS user), beat:nightly, ...")
    # A scheduled run claims its slot ("nightly:2026-11-25", "sale-ended:42"); the unique
    # index is what makes a second beat scheduler firing the same job a no-op. NULL for
    # unscheduled runs, which must not collide with each other.
    slot = models.CharField(max_length=64, null=True, blank=True, unique=True)
    scope = models.JSONField(default=dict, blank=True, help_text="Sales and start date the run was limited to.")
    fix = models.BooleanField("repair requested", default=False)
    found = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Discrepancies found, by kind.")
    repairs = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "reconciliation run"
        ordering = ("-started_at", "-id")

    def __str__(self):
        return f"run {self.pk} ({self.status})"

    @property
    def duration_s(self):
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 2)


class Discrepancy(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="discrepancies")
    last_run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, related_name="+", help_text="The latest run that saw it."
    )
    seen_count = models.PositiveIntegerField(default=1, help_text="Runs that found it.")
    kind = models.CharField(max_length=24, choices=DiscrepancyKind.choices)
    # No database constraint, like every other link to a sale (docs/architecture.md): an
    # order pointing at a sale that no longer exists is itself a finding, recorded with
    # the missing sale's id.
    activity = models.ForeignKey(
        "seckill.SeckillActivity",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    order_numbers = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=255)
    detail = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=40, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_run = models.ForeignKey(
        ReconciliationRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resolved_discrepancies",
        help_text="The run that no longer found it, or repaired it.",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=255, blank=True)
    seen_by = models.ManyToManyField(
        ReconciliationRun, related_name="seen_discrepancies", blank=True, help_text="Every run that found it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "discrepancies"
        ordering = ("-id",)
        indexes = [models.Index(fields=("state", "kind"), name="seckill_discrepancy_state_idx")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.summary}"

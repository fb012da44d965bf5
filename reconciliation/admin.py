"""Reconciliation in the admin: runs (read-only) and discrepancies, which staff resolve.

Nothing here changes orders or stock: staff follow the links to the orders behind a
discrepancy and act there (the order admin can cancel), or run `reconcile --fix` for
the repairs that are safe to automate.
"""

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from orders.models import Order
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.runner import discrepancies_resolve
from seckill.models import SeckillActivity


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly = ()


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "duration", "status", "triggered_by", "found", "counts", "fix")
    list_filter = ("status", "fix")
    search_fields = ("triggered_by", "slot")
    extra_readonly = ("duration", "discrepancies_link", "resolved_link")

    @admin.display(description="seconds")
    def duration(self, obj):
        return obj.duration_s if obj.duration_s is not None else "-"

    @admin.display(description="discrepancies")
    def discrepancies_link(self, obj):
        """Every problem this run found, also those later runs saw again (Discrepancy.seen_by)."""
        url = reverse("admin:reconciliation_discrepancy_changelist")
        return format_html('<a href="{}?seen_by__id__exact={}">those seen by this run</a>', url, obj.pk)

    @admin.display(description="resolved")
    def resolved_link(self, obj):
        url = reverse("admin:reconciliation_discrepancy_changelist")
        return format_html('<a href="{}?resolved_by_run__id__exact={}">those this run resolved</a>', url, obj.pk)


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "state", "sale", "orders", "summary", "seen_count", "last_seen", "created_at")
    list_filter = ("kind", "state", ("activity", admin.RelatedOnlyFieldListFilter))
    search_fields = ("summary", "order_numbers")
    list_select_related = ("last_run", "activity")
    actions = ("mark_resolved",)
    extra_readonly = ("sale", "order_links", "detail_pretty")
    fieldsets = (
        (None, {"fields": ("kind", "state", "sale", "summary", "order_links", "detail_pretty")}),
        ("Seen", {"fields": ("run", "last_run", "seen_count", "created_at")}),
        ("Resolution", {"fields": ("resolved_by", "resolved_by_run", "resolved_at", "resolution")}),
    )

    @admin.display(description="sale", ordering="activity_id")
    def sale(self, obj):
        if obj.activity_id is None:
            return "-"
        # The link to the sale has no DB constraint: the sale may be the missing one.
        try:
            activity = obj.activity
        except SeckillActivity.DoesNotExist:
            activity = None
        if activity is None:
            return f"#{obj.activity_id} (missing)"
        url = reverse("admin:seckill_seckillactivity_change", args=[activity.pk])
        return format_html('<a href="{}">{}</a>', url, activity)

    @admin.display(description="orders")
    def orders(self, obj):
        numbers = obj.order_numbers or []
        if not numbers:
            return "-"
        url = reverse("admin:orders_order_changelist")
        label = numbers[0] if len(numbers) == 1 else f"{len(numbers)} orders"
        return format_html('<a href="{}?number__in={}">{}</a>', url, ",".join(numbers), label)

    @admin.display(description="orders")
    def order_links(self, obj):
        numbers = obj.order_numbers or []
        ids = dict(Order.objects.filter(number__in=numbers).values_list("number", "pk"))
        if not numbers:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:orders_order_change", args=[ids[n]]) if n in ids else "#", n) for n in numbers),
        )

    @admin.display(description="detail")
    def detail_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, default=str))

    @admin.display(description="last seen", ordering="last_run__started_at")
    def last_seen(self, obj):
        return obj.last_run.started_at

    @admin.action(description="Mark selected discrepancies resolved")
    def mark_resolved(self, request, queryset):
        changed = discrepancies_resolve(discrepancy_ids=list(queryset.values_list("pk", flat=True)), user=request.user)
        self.message_user(request, f"{changed} discrepancy(ies) marked resolved.", messages.SUCCESS)

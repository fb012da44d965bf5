from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import JsonResponse
from django.template.defaultfilters import truncatechars
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_versioning import VersionedModelAdmin
from core.errors import ShopError
from seckill import intents, monitor, sale_rows, services, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillRefusal

# Fields frozen once the units are set aside, and once customers can buy.
FROZEN_WHEN_PUBLISHED = ("product", "stock_total", "per_user_limit", "bucket_count")
FROZEN_WHEN_LIVE = ("starts_at", "ends_at", "payment_minutes", "price")
# Shown on the change page, never edited: the sale as it is right now.
LIVE_STATE = (
    "status_badge",
    "remaining_in_redis",
    "writer_lag",
    "stock_available",
    "live_orders",
    "paid_orders",
    "stock_returned",
    "returned_at",
    "published_at",
    "version",
)


@admin.register(SeckillActivity)
class SeckillActivityAdmin(VersionedModelAdmin):
    # Seven narrow columns, so the list fits 1280 px beside the filters; the live ones
    # (status, units, writer, orders) refresh every 5 s (seckill/static/seckill/sale_list.js
    # polls live.json, seckill/sale_rows.py), and a phone hides the least urgent ones
    # (seckill/static/seckill/sale_list.css).
    list_display = ("sale", "status_badge", "units", "waiting", "orders_count", "window", "monitor_link")
    list_display_links = ("sale",)
    list_filter = ("is_enabled", "starts_at", "product")
    search_fields = ("title", "product__name", "product__slug")
    autocomplete_fields = ()
    date_hierarchy = "starts_at"
    actions = ("warm_up_now", "end_now", "resync_redis")

    class Media:
        css = {"all": ("shop/admin.css",)}

    TITLE_CHARS = 32

    fieldsets = (
        (None, {"fields": ("title", "product", "price", "is_enabled")}),
        ("Stock and limits", {"fields": ("stock_total", "per_user_limit", "payment_minutes", "bucket_count")}),
        ("Window", {"fields": ("starts_at", "ends_at")}),
        ("Live state", {"fields": (*LIVE_STATE, "loaded_version")}),
    )

    def get_urls(self):
        """The live monitor of a sale: its page and the JSON it polls (staff with view permission)."""
        wrap = self.admin_site.admin_view
        return [
            path("<int:activity_id>/monitor/", wrap(self.monitor_view), name="seckill_seckillactivity_monitor"),
            path(
                "<int:activity_id>/monitor.json", wrap(self.monitor_data), name="seckill_seckillactivity_monitor_data"
            ),
            path("live.json", wrap(self.live_rows), name="seckill_seckillactivity_live"),
            *super().get_urls(),
        ]

    def monitor_view(self, request, activity_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return monitor.monitor_page(self.admin_site, request, activity_id)

    def monitor_data(self, request, activity_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return monitor.monitor_data(request, activity_id)

    def live_rows(self, request):
        """The sale list's live columns for ?id=1&id=2... (staff with view permission; never
        cached: admin_view adds never_cache)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(i) for i in request.GET.getlist("id") if i.isascii() and i.isdigit() and len(i) < 12]
        return JsonResponse(sale_rows.live_json(ids))

    def get_changelist_instance(self, request):
        """The page's live figures in one go (one MGET, not a Redis call per cell)."""
        changelist = super().get_changelist_instance(request)
        found = sale_rows.rows(changelist.result_list)
        for obj in changelist.result_list:
            obj._row = found.get(obj.pk)
        return changelist

    def _live_cell(self, obj, name):
        row = getattr(obj, "_row", None)
        if row is None:
            return "-"
        return format_html('<span data-live="{}" data-sale="{}">{}</span>', name, obj.pk, getattr(row, name))

    @admin.display(description="sale", ordering="title")
    def sale(self, obj):
        return format_html(
            '<span class="sale-title" title="{}">{}</span><span class="sale-product">{}</span>',
            obj.title,
            truncatechars(obj.title, self.TITLE_CHARS),
            truncatechars(obj.product.name, self.TITLE_CHARS),
        )

    @admin.display(description="units left")
    def units(self, obj):
        if getattr(obj, "_row", None) is None:
            return "-"
        return format_html(
            '{}<span class="sale-sub">{}</span>', self._live_cell(obj, "left"), self._live_cell(obj, "pool")
        )

    @admin.display(description="to write")
    def waiting(self, obj):
        """Accepted purchases the order writers have not committed yet (the oldest one's age)."""
        return self._live_cell(obj, "waiting")

    @admin.display(description="orders", ordering="_live_orders")
    def orders_count(self, obj):
        if getattr(obj, "_row", None) is None:
            return "-"
        return format_html(
            '{}<span class="sale-sub">{}</span>', self._live_cell(obj, "live"), self._live_cell(obj, "paid")
        )

    @admin.display(description="window", ordering="starts_at")
    def window(self, obj):
        start, end = sale_rows.window(obj)
        return format_html('{}<span class="sale-sub">→ {}</span>', start, end)

    @admin.display(description="monitor")
    def monitor_link(self, obj):
        url = reverse("admin:seckill_seckillactivity_monitor", args=[obj.pk])
        return format_html('<a href="{}">watch live</a>', url)

    def get_fieldsets(self, request, obj=None):
        """The "Live state" block only once there is a sale to show the state of."""
        if obj is None:
            return [fs for fs in self.fieldsets if fs[0] != "Live state"]
        return self.fieldsets

    def get_queryset(self, request):
        return sale_rows.with_order_counts(super().get_queryset(request).select_related("product"))

    def get_readonly_fields(self, request, obj=None):
        fields = list(LIVE_STATE)
        if obj is not None and obj.is_published:
            fields += FROZEN_WHEN_PUBLISHED
        if obj is not None and obj.has_started():
            fields += FROZEN_WHEN_LIVE
        return fields

    @admin.display(description="status")
    def status_badge(self, obj):
        if obj.pk is None:
            return "-"
        row = getattr(obj, "_row", None)
        status = row.status if row is not None else obj.status_at(remaining=self._remaining(obj))
        return format_html(
            '<span class="sale-status status-{}" data-live="status" data-sale="{}">{}</span>',
            status,
            obj.pk,
            status.replace("_", " "),
        )

    def _remaining(self, obj):
        try:
            return stock.remaining(obj.pk)
        except Exception:  # noqa: BLE001 - the admin still opens while Redis is down
            return None

    @admin.display(description="left in Redis")
    def remaining_in_redis(self, obj):
        if obj.pk is None:
            return "-"
        value = self._remaining(obj)
        return "not loaded" if value is None else value

    @admin.display(description="waiting to be written")
    def writer_lag(self, obj):
        """Accepted purchases the order writers have not committed yet, and the oldest one's age."""
        if obj.pk is None or not obj.is_published:
            return "-"
        try:
            lag = intents.lag(obj.pk)
        except Exception:  # noqa: BLE001 - the admin still opens while Redis is down
            return "unknown"
        if not lag.waiting:
            return "0"
        return f"{lag.waiting} (oldest {lag.oldest_age_s:.1f} s)"

    def changelist_view(self, request, extra_context=None):
        self._warn_if_acknowledgements_are_not_durable(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._warn_if_acknowledgements_are_not_durable(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def _warn_if_acknowledgements_are_not_durable(self, request):
        """SECKILL_ACK=reserved on a Redis without AOF: a Redis restart loses accepted orders."""
        if request.method != "GET" or stock.keeps_acknowledgements():
            return
        live = [a.title for a in SeckillActivity.objects.all() if a.status_at() == SeckillActivity.Status.LIVE]
        if live:
            self.message_user(
                request,
                "Purchases are acknowledged before their order is written (SECKILL_ACK=reserved), but the sale "
                "Redis keeps nothing on disk (appendonly is not yes): a Redis restart would lose accepted "
                f"orders of {', '.join(live)}. Turn on appendonly, or set SECKILL_ACK=committed.",
                messages.WARNING,
            )

    @admin.display(description="live orders", ordering="_live_orders")
    def live_orders(self, obj):
        return getattr(obj, "_live_orders", "-")

    @admin.display(description="paid", ordering="_paid_orders")
    def paid_orders(self, obj):
        return getattr(obj, "_paid_orders", "-")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_published:
            # New window or enabled flag: rewrite the Redis metadata the Lua script checks.
            transaction.on_commit(lambda: services.activity_warm(activity_id=obj.pk), robust=True)

    def _each(self, request, queryset, action, done):
        for activity in queryset:
            try:
                action(activity_id=activity.pk)
            except ShopError as exc:
                self.message_user(request, f"{activity}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, done.format(activity=activity), messages.SUCCESS)

    @admin.action(description="Warm up now (set stock aside, load Redis)")
    def warm_up_now(self, request, queryset):
        self._each(request, queryset, services.activity_warm, "{activity}: warmed up.")

    @admin.action(description="End now (kill switch)")
    def end_now(self, request, queryset):
        self._each(request, queryset, services.activity_end_now, "{activity}: ended; no purchase is accepted.")

    @admin.action(description="Re-sync Redis from the database")
    def resync_redis(self, request, queryset):
        self._each(request, queryset, services.activity_resync, "{activity}: Redis counters rewritten from the DB.")


@admin.register(SeckillOrder)
class SeckillOrderAdmin(admin.ModelAdmin):
    list_display = ("order_link", "activity", "user", "quantity", "order_status", "created_at")
    list_filter = ("activity", "order__status")
    search_fields = ("order__number", "user__username", "reservation_id")
    list_select_related = ("order", "activity", "user")
    readonly_fields = [f.name for f in SeckillOrder._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="order", ordering="order__number")
    def order_link(self, obj):
        return format_html('<a href="/admin/orders/order/{}/change/">{}</a>', obj.order_id, obj.order.number)

    @admin.display(description="status", ordering="order__status")
    def order_status(self, obj):
        return obj.order.get_status_display()


@admin.register(SeckillRefusal)
class SeckillRefusalAdmin(admin.ModelAdmin):
    """Accepted purchases the database refused when the writer came to them (what the customer was told)."""

    list_display = ("order_number", "activity", "user", "quantity", "code", "created_at")
    list_filter = ("activity", "code")
    search_fields = ("order_number", "user__username", "reservation_id")
    list_select_related = ("activity", "user")
    readonly_fields = [f.name for f in SeckillRefusal._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

from django.contrib import admin, messages

from core.errors import ShopError
from orders import services
from orders.models import Order, OrderItem


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False
    readonly_fields = ("product", "quantity", "unit_price")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders are changed by the services only; the admin reads them and can cancel."""

    list_display = ("number", "user", "status", "source", "total", "created_at", "expires_at")
    list_filter = ("status", "source", "created_at")
    search_fields = ("number", "user__username", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    inlines = (OrderItemInline,)
    readonly_fields = [f.name for f in Order._meta.fields]
    actions = ("cancel_orders",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected pending orders (returns their stock)")
    def cancel_orders(self, request, queryset):
        done, refused = 0, []
        for order in queryset:
            try:
                services.order_cancel(order=order)
                done += 1
            except ShopError as exc:
                refused.append(f"{order.number}: {exc.detail}")
        if done:
            self.message_user(request, f"Cancelled {done} order(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

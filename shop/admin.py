from django.contrib import admin

from core.admin_versioning import VersionedModelAdmin
from shop.models import Product


@admin.register(Product)
class ProductAdmin(VersionedModelAdmin):
    list_display = ("name", "slug", "price", "stock", "is_active", "updated_at")
    list_filter = ("is_active", "created_at")
    list_editable = ()
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("version", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        ("Price and stock", {"fields": ("price", "stock")}),
        ("Audit", {"fields": ("version", "created_at", "updated_at", "loaded_version")}),
    )

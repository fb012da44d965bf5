from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import api as accounts_api
from config.health import healthz
from config.metrics import metrics
from core import openapi as _openapi_extensions  # noqa: F401 - registers schema extensions
from orders import account
from orders import api as orders_api
from seckill import api as seckill_api
from shop import api as shop_api

# Swagger UI adds a <style> element at run time; on this page only, inline styles (never
# scripts) are allowed. Its scripts come from this origin (drf-spectacular-sidecar).
DOCS_VIEW = csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="api:schema"))

api_patterns = [
    path("auth/token/", accounts_api.TokenApi.as_view(), name="token"),
    path("products/", shop_api.ProductListApi.as_view(), name="product-list"),
    path("products/<slug:slug>/", shop_api.ProductDetailApi.as_view(), name="product-detail"),
    path("orders/", orders_api.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<str:number>/", orders_api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/pay/", orders_api.OrderPayApi.as_view(), name="order-pay"),
    path("orders/<str:number>/cancel/", orders_api.OrderCancelApi.as_view(), name="order-cancel"),
    path("seckill/activities/", seckill_api.SaleListApi.as_view(), name="sale-list"),
    path("seckill/activities/<int:activity_id>/", seckill_api.SaleDetailApi.as_view(), name="sale-detail"),
    path("seckill/activities/<int:activity_id>/purchase/", seckill_api.PurchaseApi.as_view(), name="sale-purchase"),
    path("seckill/activities/<int:activity_id>/token/", seckill_api.PurchaseTokenApi.as_view(), name="sale-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI comes from its CDN and its page carries a <style> block: a wider CSP for this page only.
    path("docs/", DOCS_VIEW, name="docs"),
]

urlpatterns = [
    path("", include("seckill.urls")),
    path("", include("shop.urls")),
    path("", include("orders.urls")),
    path("api/", include((api_patterns, "api"))),
    path("", include("accounts.urls")),
    path("account/", account.account, name="account"),
    # Browsers ask for /favicon.ico on their own; the icon itself is a static file.
    path("favicon.ico", RedirectView.as_view(url=static("shop/favicon.ico"), permanent=True)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]


def media(request, path):
    """Product images (shop/images.py); `serve` refuses any path outside MEDIA_ROOT."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if settings.SERVE_MEDIA:
    urlpatterns.append(re_path(r"^media/(?P<path>.+)$", media, name="media"))

if settings.BENCH_ENDPOINTS:  # `make bench` only: the strategies it compares (config/settings.py)
    urlpatterns.append(path("bench/", include("bench.strategies.urls")))

handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"

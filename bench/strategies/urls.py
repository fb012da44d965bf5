from django.urls import path

from bench.strategies import views

app_name = "bench"

urlpatterns = [
    path("ceiling/<int:activity_id>/", views.CeilingApi.as_view(), name="ceiling"),
    path("db-pessimistic/<int:product_id>/purchase/", views.PessimisticPurchaseApi.as_view(), name="db-pessimistic"),
    path("db-optimistic/<int:product_id>/purchase/", views.OptimisticPurchaseApi.as_view(), name="db-optimistic"),
    path("naive/<int:product_id>/purchase/", views.NaivePurchaseApi.as_view(), name="naive"),
]

from django.urls import path

from seckill import views

app_name = "seckill"

urlpatterns = [
    path("", views.home, name="home"),
    path("sales/", views.sale_list, name="list"),
    path("sales/<int:activity_id>/", views.sale_detail, name="detail"),
    path("sales/<int:activity_id>/buy/", views.sale_buy, name="buy"),
]

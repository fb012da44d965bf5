from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

# No app namespace: Django's auth views and LOGIN_URL refer to these names as they are.
urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
]

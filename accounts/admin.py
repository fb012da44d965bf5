"""The admin's login form says when the failed-login lockout refused it, like the shop's.

django-axes enforces the lock on the admin login as on every login (accounts/lockout.py);
without this form the admin would show its generic "enter a correct username and
password" to a locked-out member of staff.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from accounts.views import LockoutMessageMixin


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    """Django's admin login form with the lockout's reason."""


admin.site.login_form = AdminLoginForm

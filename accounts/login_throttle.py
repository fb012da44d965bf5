"""Only a name kept for sessions: the failed-login lockout is django-axes now (accounts/lockout.py).

A session remembers the dotted path of the backend that logged it in, and Django drops
a session whose backend is no longer in AUTHENTICATION_BACKENDS. Every customer who
logged in on the page before the move to django-axes has this path in their session;
keeping it listed keeps them logged in. It checks no password (ModelBackend, behind
axes' backend, does) and only loads the session's user. Remove it, and its line in
AUTHENTICATION_BACKENDS, once SESSION_COOKIE_AGE (14 days) has passed since the move.
"""

from django.contrib.auth.backends import ModelBackend


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        return None

"""Pages never answer a bare "405 Method Not Allowed".

A form's action URL (buy, pay, cancel, add to cart, log out) accepts POST only, but a
browser can still GET it: a reload, a bookmark, or the log-in page sending a customer
back to where their expired session stopped them. `post_only` sends such a GET to the
page the action belongs to, with a note, and changes nothing, so it is safe: the
action itself still needs a POST with its CSRF token. Any other 405 of a page (a PUT,
a POST to a read-only page) gets the shop's own explanation from `FriendlyErrorsMiddleware`;
the API keeps its JSON errors (core/api_errors.py).
"""

from functools import wraps

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string


def post_only(fallback, note="Nothing was changed. Use the button on this page to continue."):
    """Decorate a POST-only page view; GET/HEAD go to `fallback(request, **kwargs)` (a URL)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                return view(request, *args, **kwargs)
            if request.method in ("GET", "HEAD"):
                if note:
                    messages.info(request, note)
                return redirect(fallback(request, *args, **kwargs))
            return HttpResponseNotAllowed(["POST"])

        return wrapper

    return decorator


class FriendlyErrorsMiddleware:
    """Renders templates/405.html for a page's empty 405 (Allow header kept); /api/ is left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not request.path.startswith("/api/") and not response.content:
            body = render_to_string("405.html", {"allowed": response.get("Allow", "")}, request=request)
            response.content = body.encode()
            response["Content-Type"] = "text/html; charset=utf-8"
        return response

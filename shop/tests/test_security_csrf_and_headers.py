"""CSRF on every web form, the security headers, and the production settings.

- Every form of the shop, the sale page and the admin is refused (403) when posted
  without its CSRF token, and the refused post changes nothing.
- Every `<form method="post">` the pages render carries the token.
- Pages carry a Content-Security-Policy that allows scripts from this origin only (no
  inline script anywhere in the templates), forbids framing, and X-Frame-Options DENY.
- With the production environment (DEBUG=0, HTTPS=1, a long SECRET_KEY, ALLOWED_HOSTS),
  `manage.py check --deploy` reports nothing, and the answers carry HSTS, secure
  cookies and the HTTPS redirect. Both run in a subprocess with that environment.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from orders.models import Order
from orders.services import CartLine, order_create
from seckill import stock
from seckill.tests.conftest import create_sale
from shop.models import Product

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
POST_FORM = re.compile(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", re.S | re.I)
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def strict_client(user=None):
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def order(customer, product):
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 1)])
    return order


# --- CSRF ------------------------------------------------------------------------------------


def test_anonymous_forms_without_csrf_token_are_refused(customer, product):
    client = strict_client()
    for url, data in [
        ("/accounts/login/", {"username": "alice", "password": "pass-for-tests-1"}),
        ("/accounts/signup/", {"username": "eve", "password1": "a-long-pass-123", "password2": "a-long-pass-123"}),
        (f"/cart/add/{product.pk}/", {"quantity": 1}),
        (f"/cart/update/{product.pk}/", {"quantity": 5}),
        ("/admin/login/", {"username": "alice", "password": "pass-for-tests-1"}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 403, url
    assert "_auth_user_id" not in client.session and not client.session.get("cart")
    assert not get_user_model().objects.filter(username="eve").exists()


def test_customer_forms_without_csrf_token_are_refused_and_change_nothing(customer, product, order):
    activity = create_sale(stock=5)
    client = strict_client(customer)
    for url in [
        f"/cart/add/{product.pk}/",
        f"/cart/update/{product.pk}/",
        "/checkout/",
        f"/orders/{order.number}/pay/",
        f"/orders/{order.number}/cancel/",
        f"/sales/{activity.pk}/buy/",
        "/accounts/logout/",
    ]:
        response = client.post(url, {"quantity": 1, "idempotency_key": "k-1"})
        assert response.status_code == 403, url
        assert "This form has expired" in response.content.decode(), url
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT
    assert Order.objects.count() == 1 and Product.objects.get(pk=product.pk).stock == 9
    assert stock.remaining(activity.pk) == 5
    assert client.get("/orders/").status_code == 200  # the refused logout left the customer logged in


def test_session_api_writes_without_csrf_token_are_refused(customer, order):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(customer)
    for url in [f"/api/orders/{order.number}/pay/", f"/api/orders/{order.number}/cancel/"]:
        response = client.post(url, {}, format="json")
        assert response.status_code == 403 and "CSRF" in response.json()["detail"], url
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_admin_forms_without_csrf_token_are_refused(staff, product, order):
    client = strict_client(staff)
    change = client.post(f"/admin/shop/product/{product.pk}/change/", {"name": "Hacked", "price": "0.01"})
    action = client.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [order.pk]})
    assert (change.status_code, action.status_code) == (403, 403)
    product.refresh_from_db()
    assert product.name == "Rice wine" and Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_every_post_form_on_every_page_carries_the_csrf_token(customer, staff, product, order):
    activity = create_sale(stock=5)
    anonymous, logged_in, admin = Client(), Client(), Client()
    logged_in.force_login(customer)
    admin.force_login(staff)
    logged_in.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    pages = [
        (anonymous, "/accounts/login/"),
        (anonymous, "/accounts/signup/"),
        (anonymous, f"/products/{product.slug}/"),
        (logged_in, "/"),
        (logged_in, "/products/"),
        (logged_in, f"/products/{product.slug}/"),
        (logged_in, "/cart/"),
        (logged_in, "/checkout/"),
        (logged_in, "/orders/"),
        (logged_in, f"/orders/{order.number}/"),
        (logged_in, f"/sales/{activity.pk}/"),
        (admin, f"/admin/shop/product/{product.pk}/change/"),
        (admin, "/admin/orders/order/"),
    ]
    forms = 0
    for client, url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        for body in POST_FORM.findall(response.content.decode()):
            forms += 1
            assert 'name="csrfmiddlewaretoken"' in body, (url, body[:200])
    assert forms >= 12  # logout on every logged-in page, cart, checkout, pay, cancel, buy, admin


# --- headers --------------------------------------------------------------------------------


def csp(response):
    header = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_pages_carry_a_strict_csp_and_refuse_framing(client, product):
    activity = create_sale(stock=5)
    for url in ["/", f"/sales/{activity.pk}/", f"/products/{product.slug}/", "/accounts/login/", "/admin/login/"]:
        response = client.get(url)
        policy = csp(response)
        assert policy["script-src"] == ["'self'"], url
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"], url
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"], url
        assert "'unsafe-inline'" not in policy["style-src"] and "'unsafe-eval'" not in str(policy), url
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["Referrer-Policy"] == "same-origin", url
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin", url


def test_api_answers_carry_the_headers_too(client):
    response = client.get("/api/seckill/activities/")
    assert csp(response)["script-src"] == ["'self'"] and response.headers["X-Frame-Options"] == "DENY"


def test_the_api_docs_page_serves_swagger_itself_under_the_same_policy(client):
    response = client.get("/api/docs/")
    assert csp(response)["script-src"] == ["'self'"]
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in response.content.decode()
    assert "cdn.jsdelivr.net" not in response.content.decode()


def test_no_template_has_an_inline_script_or_event_handler():
    """The CSP forbids inline scripts, so none may be left for it to break."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        if INLINE_SCRIPT.search(text) or INLINE_HANDLER.search(text):
            offenders.append(str(template.relative_to(ROOT)))
    assert not offenders


def test_rendered_pages_have_no_inline_script(customer, product, order):
    activity = create_sale(stock=5)
    client = Client()
    client.force_login(customer)
    client.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    for url in ["/", f"/sales/{activity.pk}/", "/checkout/", f"/orders/{order.number}/", "/cart/"]:
        html = client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(html), url
    assert "seckill/sale.js" in client.get(f"/sales/{activity.pk}/").content.decode()


# --- production settings ----------------------------------------------------------------------


def production_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        HTTPS="1",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.example.com",
        REDIS_URL=django_settings.REDIS_URL,
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
    )
    return env


def test_check_deploy_with_production_settings_reports_nothing():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
client = Client(HTTP_HOST="shop.example.com")
secure = client.get("/accounts/login/", secure=True)
plain = client.get("/accounts/login/")
print(json.dumps({
    "secure_status": secure.status_code,
    "headers": dict(secure.headers),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "settings": {name: getattr(settings, name) for name in (
        "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "DEBUG",
        "SECKILL_PURCHASE_TOKEN_REQUIRED",
    )},
}))
"""


def test_production_answers_carry_hsts_secure_cookies_and_redirect_to_https():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    headers = seen["headers"]
    assert seen["secure_status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "upgrade-insecure-requests" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert seen["csrf_cookie_secure"]
    assert seen["settings"]["SESSION_COOKIE_SECURE"] and seen["settings"]["SESSION_COOKIE_HTTPONLY"]
    assert seen["settings"]["CSRF_COOKIE_SECURE"] and not seen["settings"]["DEBUG"]
    assert (seen["plain_status"], seen["plain_location"]) == (301, "https://shop.example.com/accounts/login/")

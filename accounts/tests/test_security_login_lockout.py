"""Failed-login lockout (django-axes, accounts/lockout.py) on the login page, the token API and the admin.

Counters live in Redis (axes' cache handler, no database row per failure), per username
and per client address with a limit each; a lock refuses even the right password, says
why (a message on the page and the admin login, 429 JSON with Retry-After on the API),
is not extended by attempts made while locked, and lifts by itself after the cool-off.
"""

import time

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import lockout
from shop.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD = "pass-for-tests-1"


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.LOGIN_FAILURES_PER_IP = 5
    settings.LOGIN_LOCKOUT_SECONDS = 60
    return settings


def page_login(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def api_login(username, password, ip="10.0.0.1"):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_page_locks_a_username_after_n_failures_even_for_the_right_password(customer, limits):
    client = Client()
    for _ in range(2):
        response = page_login(client, "alice", "wrong")
        assert response.status_code == 200 and "didn't match" in response.content.decode()
    third = page_login(client, "alice", "wrong")
    assert third.status_code == 429 and "Too many failed log-in attempts for this account" in third.content.decode()
    right = page_login(client, "alice", GOOD, ip="10.9.9.9")  # even from elsewhere
    assert right.status_code == 429 and 'data-testid="login-locked"' in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert page_login(Client(), "bob-who-does-not-exist", "x").status_code == 200  # other names are not locked


def test_token_api_answers_429_json_with_retry_after(customer, limits):
    for _ in range(2):
        response = api_login("alice", "wrong")
        assert response.status_code == 400 and response.json()["code"] == "invalid"
    locked = api_login("alice", "wrong")
    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "login_locked" and "Too many failed" in body["detail"]
    assert 0 < body["retry_after"] <= 60 and 0 < int(locked["Retry-After"]) <= 60
    assert api_login("alice", GOOD).status_code == 429 and not Token.objects.exists()


def test_failures_on_the_page_and_the_api_add_up(customer, limits):
    page_login(Client(), "alice", "wrong")
    api_login("alice", "wrong")
    assert page_login(Client(), "alice", "wrong").status_code == 429
    assert api_login("alice", GOOD).status_code == 429


def test_one_address_trying_many_usernames_is_locked(customer, other_customer, limits):
    for i in range(5):
        page_login(Client(), f"guess{i}", "wrong", ip="192.0.2.7")
    response = page_login(Client(), "alice", GOOD, ip="192.0.2.7")
    assert response.status_code == 429 and "for your network" in response.content.decode()
    assert api_login("bob", GOOD, ip="192.0.2.7").status_code == 429
    assert api_login("bob", GOOD, ip="198.51.100.1").status_code == 200  # another address is fine


def admin_login(client, username, password, ip="10.0.0.2"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_admin_login_is_behind_the_same_lock_and_says_so(staff, limits):
    for _ in range(2):
        response = admin_login(Client(), "staffer", "wrong")
        assert response.status_code == 200 and "Please enter the correct username" in response.content.decode()
    assert admin_login(Client(), "staffer", "wrong").status_code == 429
    client = Client()
    response = admin_login(client, "staffer", GOOD, ip="10.9.9.9")  # the right password, from elsewhere
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed log-in attempts for this account" in response.content.decode()


def test_the_admin_lock_lifts_after_the_cool_off(staff, limits):
    limits.LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        admin_login(Client(), "staffer", "wrong")
    assert admin_login(Client(), "staffer", GOOD).status_code == 429
    time.sleep(1.2)
    client = Client()
    assert admin_login(client, "staffer", GOOD).status_code == 302 and "_auth_user_id" in client.session


def test_the_login_page_lock_lifts_after_the_cool_off(customer, limits):
    limits.LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        page_login(Client(), "alice", "wrong")
    assert page_login(Client(), "alice", GOOD).status_code == 429
    time.sleep(1.2)
    client = Client()
    assert page_login(client, "alice", GOOD).status_code == 302 and "_auth_user_id" in client.session


def test_a_success_resets_the_username_count(customer, limits):
    client = Client()
    page_login(client, "alice", "wrong")
    page_login(client, "alice", "wrong")
    assert page_login(client, "alice", GOOD).status_code == 302
    client = Client()
    page_login(client, "alice", "wrong")
    page_login(client, "alice", "wrong")
    assert page_login(client, "alice", GOOD).status_code == 302


def test_attempts_while_locked_are_not_counted_and_the_lock_lifts_by_itself(customer, limits):
    limits.LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        api_login("alice", "wrong")
    for _ in range(10):  # an attacker keeps trying; it must not push the end of the lock back
        assert api_login("alice", "wrong").status_code == 429
    time.sleep(1.2)
    response = api_login("alice", GOOD)
    assert response.status_code == 200 and len(response.json()["token"]) == 40


def test_usernames_are_compared_case_insensitively_and_hashed_in_redis(customer, limits):
    for name in ("Alice", "ALICE", " alice "):
        api_login(name, "wrong")
    assert api_login("alice", GOOD).status_code == 429
    keys = [k.decode() for k in cache.client.get_client().scan_iter(match="*axes-*")]  # every master of a cluster
    assert len(keys) == 2 and not any("alice" in k.lower() for k in keys)  # one per username, one per address


def test_unlock_lifts_a_lock(customer, limits):
    for _ in range(3):
        api_login("alice", "wrong")
    lockout.unlock(username="Alice")  # as support types it
    assert api_login("alice", GOOD).status_code == 200


def test_signup_and_an_existing_session_still_work(limits):
    UserFactory(username="dora")
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"username": "erin", "email": "e@example.com", "password1": "a-long-pass-123", "password2": "a-long-pass-123"},
    )
    assert response.status_code == 302 and client.get("/orders/").status_code == 200


def test_a_success_does_not_reset_the_address_count(customer, limits):
    """An attacker holding one valid account cannot wipe the count of the address it guesses from."""
    for i in range(4):
        page_login(Client(), f"guess{i}", "wrong", ip="192.0.2.8")
    assert page_login(Client(), "alice", GOOD, ip="192.0.2.8").status_code == 302
    page_login(Client(), "guess9", "wrong", ip="192.0.2.8")  # the fifth failure from the address
    assert api_login("alice", GOOD, ip="192.0.2.8").status_code == 429


def test_a_failed_login_writes_nothing_to_the_database(customer, limits):
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        for _ in range(4):  # failures, the locking one, and one refused while locked
            api_login("alice", "wrong")
            page_login(Client(), "alice", "wrong")
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert not AccessAttempt.objects.exists() and not AccessLog.objects.exists()
    assert not AccessFailureLog.objects.exists()


def test_axes_reset_command_lifts_a_lock(customer, limits):
    from io import StringIO

    from django.core.management import call_command

    for _ in range(3):
        api_login("alice", "wrong")
    out = StringIO()
    call_command("axes_reset_username", "Alice", stdout=out)
    assert "1 attempts removed" in out.getvalue()
    assert api_login("alice", GOOD).status_code == 200


def test_a_session_logged_in_before_axes_stays_logged_in(customer):
    """Sessions name the backend that logged them in; the old path stays listed for them."""
    from accounts.login_throttle import ThrottledModelBackend

    client = Client()
    client.force_login(customer, backend="accounts.login_throttle.ThrottledModelBackend")
    assert client.get("/account/").status_code == 200
    assert ThrottledModelBackend().authenticate(None, username="alice", password=GOOD) is None  # checks nothing

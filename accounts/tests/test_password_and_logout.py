"""Password reset and change, sign-up's e-mail, log-out by POST with a message."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from accounts.views import RESETS_PER_EMAIL

pytestmark = pytest.mark.django_db


def reset_link(message):
    return re.search(r"https?://[^/]+(/accounts/password/reset/\S+/)", message.body).group(1)


def test_password_reset_by_email_end_to_end(client, customer):
    response = client.post("/accounts/password/reset/", {"email": customer.email}, follow=True)
    assert "Check your e-mail" in response.content.decode()
    [message] = mail.outbox
    link = reset_link(message)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "n3w-Passw0rd!", "new_password2": "n3w-Passw0rd!"})
    assert done.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password("n3w-Passw0rd!")
    assert "This link has expired" in Client().get(link, follow=True).content.decode()  # single use


def test_reset_for_an_unknown_address_reads_the_same_and_sends_nothing(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"}, follow=True)
    assert "Check your e-mail" in response.content.decode() and mail.outbox == []


def test_reset_requests_per_address_are_capped(client, customer):
    for _ in range(RESETS_PER_EMAIL):
        client.post("/accounts/password/reset/", {"email": customer.email})
    response = client.post("/accounts/password/reset/", {"email": customer.email.upper()})
    assert response.status_code == 200 and "Too many reset requests" in response.content.decode()
    assert len(mail.outbox) == RESETS_PER_EMAIL


def test_password_change_needs_the_old_password(customer):
    client = Client()
    client.force_login(customer)
    wrong = client.post(
        "/accounts/password/change/",
        {"old_password": "nope", "new_password1": "An0ther-pass!", "new_password2": "An0ther-pass!"},
    )
    assert "Your old password was entered incorrectly" in wrong.content.decode()
    customer.refresh_from_db()
    assert customer.check_password("pass-for-tests-1")
    ok = client.post(
        "/accounts/password/change/",
        {"old_password": "pass-for-tests-1", "new_password1": "An0ther-pass!", "new_password2": "An0ther-pass!"},
        follow=True,
    )
    assert "Your password was changed." in ok.content.decode() and ok.redirect_chain[-1][0] == "/account/"
    customer.refresh_from_db()
    assert customer.check_password("An0ther-pass!")


def test_signup_requires_an_email(client):
    form = {"username": "newbie", "email": "", "password1": "Str0ng-pass!", "password2": "Str0ng-pass!"}
    response = client.post("/accounts/signup/", form)
    assert "This field is required." in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_logout_get_asks_and_post_logs_out_with_a_message(customer):
    client = Client()
    client.force_login(customer)
    page = client.get("/accounts/logout/")
    assert page.status_code == 200 and "Log out?" in page.content.decode()
    assert "_auth_user_id" in client.session  # a GET logs nobody out
    response = client.post("/accounts/logout/", follow=True)
    assert "You have logged out." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_page_explains_why_when_sent_from_another_page(client):
    html = client.get("/accounts/login/?next=/checkout/").content.decode()
    assert "Please log in to continue" in html and "Forgot password?" in html

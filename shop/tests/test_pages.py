import pytest
from django.contrib.auth import get_user_model

from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_home_lists_products_with_price_and_stock(client):
    ProductFactory(name="Cast-iron pan", price="45.00", stock=0)
    ProductFactory(name="Keyboard", price="129.00", stock=4)
    html = client.get("/").content.decode()
    assert "Cast-iron pan" in html and "Sold out" in html
    assert "€129.00" in html and "4 in stock" in html


def test_product_page_has_an_add_to_cart_form(client, product):
    html = client.get(f"/products/{product.slug}/").content.decode()
    assert "Add to cart" in html and "csrfmiddlewaretoken" in html


def test_inactive_product_page_is_404(client):
    ProductFactory(slug="hidden", is_active=False)
    assert client.get("/products/hidden/").status_code == 404


def test_signup_creates_the_account_and_logs_in(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "email": "d@example.com", "password1": "a-long-pass-123", "password2": "a-long-pass-123"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/"
    assert response.context["user"].username == "dora"
    assert "Welcome, dora" in response.content.decode()


def test_signup_with_mismatched_passwords_shows_the_error_and_creates_nothing(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "email": "d@example.com", "password1": "a-long-pass-123", "password2": "other-pass-123"},
    )
    assert response.status_code == 200 and "password2" in response.context["form"].errors
    assert not get_user_model().objects.filter(username="dora").exists()


def test_login_and_logout(client, customer):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pass-for-tests-1"}, follow=True)
    assert response.context["user"].is_authenticated
    response = client.post("/accounts/logout/", follow=True)
    assert not response.context["user"].is_authenticated


def test_bad_login_says_so(client, customer):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "didn't match" in response.content.decode()


def test_signup_next_does_not_redirect_off_site(client):
    response = client.post(
        "/accounts/signup/?next=https://evil.example/",
        {"username": "erin", "email": "e@example.com", "password1": "a-long-pass-123", "password2": "a-long-pass-123"},
    )
    assert response.status_code == 302 and response["Location"] == "/"

import pytest

from shop.tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_product_list_shows_only_products_on_sale(api):
    ProductFactory(slug="on", is_active=True)
    ProductFactory(slug="off", is_active=False)
    response = api.get("/api/products/")
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == ["on"]


def test_product_detail_by_slug(api, product):
    body = api.get(f"/api/products/{product.slug}/").json()
    assert body == {
        "slug": "rice-wine",
        "name": "Rice wine",
        "description": "",
        "price": "100.00",
        "stock": 10,
        "in_stock": True,
        "image": None,
    }


@pytest.mark.parametrize("slug", ["nope", "off"])
def test_unknown_or_inactive_product_is_a_json_404(api, slug):
    ProductFactory(slug="off", is_active=False)
    response = api.get(f"/api/products/{slug}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and response.json()["detail"]


def test_token_endpoint_returns_a_token_for_good_credentials(api):
    UserFactory(username="carol", password="right-password-1")
    response = api.post("/api/auth/token/", {"username": "carol", "password": "right-password-1"}, format="json")
    assert response.status_code == 200 and len(response.json()["token"]) == 40


def test_token_endpoint_refuses_bad_credentials_with_a_json_error(api):
    UserFactory(username="carol", password="right-password-1")
    response = api.post("/api/auth/token/", {"username": "carol", "password": "wrong"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "credentials" in response.json()["detail"]


def test_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_openapi_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/orders/{number}/pay/" in schema.json()["paths"]
    assert api.get("/api/docs/").status_code == 200

"""Search on the site and the API, pages of results, product images and their copies."""

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from shop import images
from shop.demo import DEMO_PRODUCTS, seed_demo_catalogue
from shop.models import Product
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def catalogue(db):
    ProductFactory(name="Mechanical keyboard", slug="kbd", description="Hot-swappable switches")
    ProductFactory(name="Cast-iron pan", slug="pan", description="Pre-seasoned, 28 cm")
    ProductFactory(name="Keyboard cover", slug="cover", description="Silicone", is_active=False)


def test_search_finds_every_word_in_name_or_description(client, catalogue):
    response = client.get("/products/", {"q": "keyboard switches"})
    names = [p.name for p in response.context["products"]]
    assert names == ["Mechanical keyboard"]  # the inactive cover is never listed
    assert "1 product found" in response.content.decode()
    assert [p.name for p in client.get("/products/", {"q": "PAN"}).context["products"]] == ["Cast-iron pan"]


def test_search_without_a_match_says_so(client, catalogue):
    response = client.get("/products/", {"q": "submarine"})
    assert response.status_code == 200 and list(response.context["products"]) == []
    assert "Nothing matches “submarine”" in response.content.decode()


def test_an_overlong_search_is_refused_with_a_message(client, catalogue):
    response = client.get("/products/", {"q": "x" * 101})
    assert response.status_code == 400 and list(response.context["products"]) == []
    assert "A search is at most 100 characters." in response.content.decode()


def test_product_list_has_pages_and_a_bad_page_number_shows_the_first(client):
    for i in range(15):
        ProductFactory(name=f"Mug {i:02}", slug=f"mug-{i}")
    first = client.get("/products/", {"q": "mug"})
    assert len(first.context["products"]) == 12 and "Page 1 of 2" in first.content.decode()
    second = client.get("/products/", {"q": "mug", "page": "2"})
    assert len(second.context["products"]) == 3
    assert client.get("/products/", {"page": "banana"}).context["page"].number == 1


def test_api_search_filters_and_paginates(api, catalogue):
    body = api.get("/api/products/", {"search": "keyboard"}).json()
    assert body["count"] == 1 and [p["slug"] for p in body["results"]] == ["kbd"]
    assert api.get("/api/products/", {"search": "nothing-like-this"}).json()["count"] == 0
    assert api.get("/api/products/").json()["count"] == 2


def test_api_search_too_long_is_a_400_with_a_code(api, catalogue):
    response = api.get("/api/products/", {"search": "y" * 101})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "at most 100" in response.json()["detail"]


def _png(width=1000, height=600, colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")


def test_an_image_gets_its_resized_copies_and_a_srcset(client, media):
    product = ProductFactory(slug="lamp", name="Lamp")
    product.image = _png()
    product.save()
    for width in images.VARIANT_WIDTHS:
        with Image.open(media / images.variant_name(product.image.name, width)) as copy:
            assert copy.size == (width, images.variant_height(width))
    html = client.get("/products/lamp/").content.decode()
    assert "320w" in html and "960w" in html and 'alt="Lamp"' in html
    assert client.get(product.image_url).status_code == 200  # served from MEDIA_ROOT
    assert client.get("/api/products/lamp/").json()["image"] == product.image_url


def test_a_product_without_an_image_shows_the_placeholder(client):
    ProductFactory(slug="plain", name="Plain thing")
    html = client.get("/products/plain/").content.decode()
    assert 'class="thumb big placeholder"' in html and "<img" not in html.split("<main")[1]


def test_media_outside_the_folder_is_not_served(client, media):
    assert client.get("/media/../config/settings.py").status_code in (400, 404)  # refused, never the file


def test_demo_catalogue_gets_real_pictures_once(media):
    seed_demo_catalogue()
    products = list(Product.objects.filter(slug__in=[slug for slug, *_ in DEMO_PRODUCTS]))
    assert len(products) == len(DEMO_PRODUCTS) and all(p.image for p in products)
    files = sorted(os.listdir(media / "products"))
    assert len(files) == len(DEMO_PRODUCTS) * (1 + len(images.VARIANT_WIDTHS))
    with Image.open(media / products[0].image.name) as picture:
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert picture.size == (1200, 900) and len(colours) > 100  # a picture, not a flat fill
    seed_demo_catalogue()  # again: nothing redrawn
    assert sorted(os.listdir(media / "products")) == files


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("shop/favicon.ico")

"""The cart holds no more of a product than is in stock (or CART_MAX_QUANTITY); a refusal changes nothing."""

import pytest
from django.test import Client

from core.errors import InvalidInput
from orders.cart import SESSION_KEY, SessionCart
from shop.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


class FakeSession(dict):
    modified = False


def test_add_up_to_the_stock_then_refuse_the_next_unit():
    product = ProductFactory(stock=3)
    cart = SessionCart(FakeSession())
    cart.add(product, 2)
    cart.add(product, 1)
    with pytest.raises(InvalidInput, match="already holds 3"):
        cart.add(product, 1)
    assert cart.quantity_of(product.pk) == 3 and len(cart) == 3


def test_refused_add_leaves_the_cart_as_it_was():
    product = ProductFactory(stock=5, name="Kettle")
    session = FakeSession()
    cart = SessionCart(session)
    cart.add(product, 4)
    with pytest.raises(InvalidInput, match="at most 1 more of Kettle"):
        cart.add(product, 2)
    assert session[SESSION_KEY] == {str(product.pk): 4}


def test_cap_is_the_per_order_maximum_when_stock_is_larger(settings):
    settings.CART_MAX_QUANTITY = 99
    product = ProductFactory(stock=500)
    cart = SessionCart(FakeSession())
    cart.add(product, 99)
    with pytest.raises(InvalidInput):
        cart.add(product, 1)
    assert cart.quantity_of(product.pk) == 99


def test_sold_out_product_cannot_be_added():
    product = ProductFactory(stock=0, name="Lamp")
    cart = SessionCart(FakeSession())
    with pytest.raises(InvalidInput, match="Lamp is sold out"):
        cart.add(product, 1)
    assert len(cart) == 0


@pytest.mark.parametrize("quantity", [None, 0, -2, True, 1.5, "2"])
def test_add_refuses_what_is_not_a_positive_whole_number(quantity):
    product = ProductFactory(stock=10)
    cart = SessionCart(FakeSession())
    with pytest.raises(InvalidInput):
        cart.add(product, quantity)
    assert len(cart) == 0


def test_update_may_lower_below_a_fallen_stock_but_not_raise_above_it():
    product = ProductFactory(stock=6)
    cart = SessionCart(FakeSession())
    cart.add(product, 6)
    product.stock = 2  # others bought meanwhile
    cart.update(product, 4)  # lowering is always fine
    assert cart.quantity_of(product.pk) == 4
    with pytest.raises(InvalidInput, match="between 0 and 4"):
        cart.update(product, 5)
    assert cart.quantity_of(product.pk) == 4
    cart.update(product, 0)
    assert len(cart) == 0


def test_product_page_offers_no_more_than_the_stock(client):
    product = ProductFactory(stock=40, slug="kbd")
    html = client.get("/products/kbd/").content.decode()
    assert 'max="40"' in html and "40 in stock" in html
    response = Client().post(f"/cart/add/{product.pk}/", {"quantity": 50}, follow=True)
    assert "Choose a quantity between 1 and 40." in response.content.decode()
    assert response.context["cart_count"] == 0


def test_cart_page_update_over_the_stock_is_refused(client):
    product = ProductFactory(stock=3)
    client.post(f"/cart/add/{product.pk}/", {"quantity": 2})
    response = client.post(f"/cart/update/{product.pk}/", {"quantity": 7}, follow=True)
    assert "Choose a quantity between 0 and 3." in response.content.decode()
    assert response.context["cart_count"] == 2

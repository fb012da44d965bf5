import pytest
from django.test import Client

from orders.services import CartLine, order_create
from shop.models import Product

pytestmark = pytest.mark.django_db


def _form(product, **changes):
    data = {
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "is_active": "on",
        "price": str(product.price),
        "stock": product.stock,
        "loaded_version": product.version,
    }
    data.update(changes)
    return data


def _staff_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_second_staff_editing_the_same_product_gets_a_conflict_not_an_overwrite(staff, product):
    from shop.tests.factories import UserFactory

    first, second = (
        _staff_client(staff),
        _staff_client(UserFactory(username="staff2", is_staff=True, is_superuser=True)),
    )
    url = f"/admin/shop/product/{product.pk}/change/"
    assert first.get(url).status_code == 200 and second.get(url).status_code == 200
    loaded = Product.objects.get(pk=product.pk)

    saved = first.post(url, _form(loaded, price="90.00"))
    assert saved.status_code == 302

    refused = second.post(url, _form(loaded, price="80.00"))
    assert refused.status_code == 200
    assert "Somebody else changed this product" in refused.content.decode()
    product.refresh_from_db()
    assert product.price == 90 and product.version == loaded.version + 1


def test_a_sale_between_load_and_save_makes_the_admin_edit_conflict(staff, product, customer):
    client = _staff_client(staff)
    url = f"/admin/shop/product/{product.pk}/change/"
    loaded = Product.objects.get(pk=product.pk)
    order_create(user=customer, lines=[CartLine(product.pk, 3)])

    refused = client.post(url, _form(loaded, stock=50))
    assert refused.status_code == 200 and "a sale took stock" in refused.content.decode()
    product.refresh_from_db()
    assert product.stock == 7  # the sale's decrement survives; the stale 50 was not written


def test_admin_product_list_searches_and_filters(staff, product):
    client = _staff_client(staff)
    response = client.get("/admin/shop/product/", {"q": "rice", "is_active__exact": "1"})
    assert response.status_code == 200 and "Rice wine" in response.content.decode()


def test_admin_order_list_and_cancel_action_return_stock(staff, product, customer):
    from orders.models import Order

    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    client = _staff_client(staff)
    assert order.number in client.get("/admin/orders/order/").content.decode()
    client.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [order.pk]})
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and product.stock == 10

"""The order confirmation e-mail: sent once after the order commits, never for a rolled-back one.

Real MariaDB; Django's locmem outbox stands in for the mail server; Celery runs eagerly
(config/settings_test.py), so the task runs when the order's transaction commits.
"""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.utils import timezone

from core.errors import InsufficientStock
from orders import notifications, tasks
from orders.models import Order, OrderEmail
from orders.services import CartLine, order_create
from shop.models import Product
from shop.tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class RefusingBackend(BaseEmailBackend):
    """A mail server that is away."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server away")


def confirmations(order):
    return [m for m in mail.outbox if order.number in m.subject]


def test_checkout_sends_one_confirmation_after_the_commit(customer):
    product = ProductFactory(name="Tea pot", price="1234.50", stock=5)
    order, _ = order_create(user=customer, lines=[CartLine(product.pk, 2)])
    [message] = confirmations(order)
    assert message.to == [customer.email]
    assert "2 x Tea pot" in message.body and "€2,469.00" in message.body
    assert f"/orders/{order.number}/" in message.body and "Please pay by" in message.body
    row = OrderEmail.objects.get(order=order)
    assert row.sent_at is not None and row.recipient == customer.email


def test_the_task_run_again_sends_nothing_more(customer):
    order, _ = order_create(user=customer, lines=[CartLine(ProductFactory(stock=5).pk, 1)])
    assert tasks.send_order_confirmation.delay(order.pk) is not None
    assert notifications.send_order_confirmation(order.pk) is False
    assert len(confirmations(order)) == 1 and OrderEmail.objects.filter(order=order).count() == 1


def test_a_replayed_checkout_with_its_key_sends_no_second_email(customer):
    product = ProductFactory(stock=5)
    first, created = order_create(user=customer, lines=[CartLine(product.pk, 1)], idempotency_key="k-1")
    again, created_again = order_create(user=customer, lines=[CartLine(product.pk, 1)], idempotency_key="k-1")
    assert created and not created_again and again.pk == first.pk
    assert len(mail.outbox) == 1


def test_a_refused_order_sends_nothing_and_leaves_no_row(customer):
    product = ProductFactory(stock=1)
    with pytest.raises(InsufficientStock):
        order_create(user=customer, lines=[CartLine(product.pk, 2)])
    assert mail.outbox == [] and not Order.objects.exists() and not OrderEmail.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == 1


def test_an_outer_rollback_takes_the_email_with_it(customer):
    product = ProductFactory(stock=3)
    with pytest.raises(RuntimeError), transaction.atomic():
        order_create(user=customer, lines=[CartLine(product.pk, 1)])
        raise RuntimeError("the caller's transaction fails after the order was written")
    assert mail.outbox == [] and not Order.objects.exists()


def test_a_mail_server_away_leaves_it_unsent_and_a_later_run_sends_it_once(customer, settings):
    settings.EMAIL_BACKEND = "orders.tests.test_notifications.RefusingBackend"
    order, _ = order_create(user=customer, lines=[CartLine(ProductFactory(stock=5).pk, 1)])
    # The order stands although the e-mail failed (robust on_commit, the task's retries gave up eagerly).
    assert Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_PAYMENT).exists()
    assert not OrderEmail.objects.filter(order=order, sent_at__isnull=False).exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert notifications.orders_missing_confirmation() == [order.pk]
    assert tasks.queue_missing_confirmations.delay() is not None
    assert len(confirmations(order)) == 1 and notifications.orders_missing_confirmation() == []


def test_two_deliveries_at_once_send_one_email(customer):
    product = ProductFactory(stock=5)
    with transaction.atomic():  # written without the on-commit e-mail: the two workers below race for it
        order = Order.objects.create(user=customer, total=product.price)
    barrier, results = threading.Barrier(4), []

    def deliver():
        barrier.wait()
        try:
            results.append(notifications.send_order_confirmation(order.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert len(confirmations(order)) == 1 and OrderEmail.objects.filter(order=order).count() == 1


def test_a_customer_without_an_address_is_skipped_and_marked():
    user = UserFactory(username="noaddress", email="")
    order, _ = order_create(user=user, lines=[CartLine(ProductFactory(stock=5).pk, 1)])
    assert mail.outbox == []
    row = OrderEmail.objects.get(order=order)
    assert row.sent_at is not None and row.recipient == ""

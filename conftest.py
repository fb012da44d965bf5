"""Fixtures shared by every app's tests. MariaDB and Redis are the real servers.

Redis: the test settings point at their own db index (config/settings_test.py), which
is flushed before every test so that no test sees another's keys. Under `make
test-cluster` they point at a Redis Cluster of the run's own, which has db 0 only:
FLUSHDB then goes to every master (redis-py sends it to all of them).
"""

import pytest
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from seckill import cache as seckill_cache
from shop.tests.factories import ProductFactory, UserFactory, token_client


@pytest.fixture(autouse=True)
def redis_db():
    client = get_redis_connection("default")
    client.flushdb()
    seckill_cache.clear()
    yield client
    client.flushdb()
    seckill_cache.clear()


@pytest.fixture
def customer(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_customer(db):
    return UserFactory(username="bob")


@pytest.fixture
def staff(db):
    return UserFactory(username="staffer", is_staff=True, is_superuser=True)


@pytest.fixture
def product(db):
    return ProductFactory(slug="rice-wine", name="Rice wine", price="100.00", stock=10)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def customer_api(customer):
    return token_client(customer)


@pytest.fixture
def other_api(other_customer):
    return token_client(other_customer)

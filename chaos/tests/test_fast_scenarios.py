"""The chaos scenarios that finish in seconds, once each, inside `make test`.

Each starts real processes (its own redis-server, gunicorn, sometimes two) against the
test database, injects its fault and asserts I1-I5 afterwards, exactly as
`make chaos` does (chaos/run.py); the slower scenarios run only there.
"""

import random

import pytest
from django.db import connection

from bench.stack import free_port
from chaos.scenarios import SCENARIOS, ChaosContext
from seckill.tests.conftest import create_customers

FAST = [name for name, (_, fast) in SCENARIOS.items() if fast]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.chaos, pytest.mark.timeout(180)]


@pytest.fixture
def chaos_context(settings, tmp_path):
    """This process follows the chaos stack's Redis (which scenarios restart) and database."""
    port = free_port(6430)
    caches = dict(settings.CACHES)
    # A standalone redis-server even under make test-cluster: the scenarios pause, kill and
    # restart it, which they do to one server (chaos/stack.py drops REDIS_CLUSTER_NODES too).
    options = {
        k: v for k, v in caches["default"]["OPTIONS"].items() if k not in ("CONNECTION_FACTORY", "CLUSTER_RETRIES")
    }
    caches["default"] = {**caches["default"], "LOCATION": f"redis://127.0.0.1:{port}/0", "OPTIONS": options}
    settings.CACHES = caches
    settings.REDIS_CLUSTER_NODES = []
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    database_url = f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"
    users = create_customers(260, prefix="chaos-")
    from rest_framework.authtoken.models import Token

    tokens = dict(Token.objects.filter(user__in=users).values_list("user_id", "key"))
    return ChaosContext(database_url, port, str(tmp_path), [(u.pk, tokens[u.pk]) for u in users])


@pytest.mark.parametrize("name", FAST)
def test_fast_scenario_keeps_every_invariant(chaos_context, name):
    func, _ = SCENARIOS[name]
    result = func(chaos_context, random.Random(f"make-test:{name}"))
    assert result.faults >= 1, "the fault was never injected"
    assert result.requests > 0
    assert result.violations == [], result.violations

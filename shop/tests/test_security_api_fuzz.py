"""Schema fuzzing: schemathesis sends generated requests to every operation of `/api/schema/`.

In-process over WSGI (no server), authenticated as a customer with a token, against
the real MariaDB and Redis. Every answer must be in the schema (status code, content
type, body), none may be a 5xx, and every error must be JSON `{code, detail}`.
Path parameters are drawn half from the generator and half from rows that exist (the
customer's orders, another customer's order, live and upcoming sales, an order still being written), so
the fuzzer reaches the code behind the 404s too.

Bounded: FUZZ_EXAMPLES examples per operation (env SECURITY_FUZZ_EXAMPLES to run more).
"""

import os
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from orders.models import Order
from orders.services import CartLine, order_create
from seckill.purchase import purchase
from seckill.tests.conftest import create_sale
from shop.tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FUZZ_EXAMPLES = int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "25"))


@dataclass
class Known:
    token: str
    victims: list  # numbers of the other customer's orders


@pytest.fixture
def known(settings):
    customer = UserFactory(username="fuzzer")
    other = UserFactory(username="victim")
    product = ProductFactory(slug="fuzz-product", stock=1000)
    live = create_sale(stock=50, limit=3, title="Fuzz live")
    upcoming = create_sale(stock=5, starts_in=3600, title="Fuzz later")
    own = [order_create(user=customer, lines=[CartLine(product.pk, 1)])[0] for _ in range(3)]
    theirs = order_create(user=other, lines=[CartLine(product.pk, 1)])[0]
    bought = purchase(activity_id=live.pk, user=other, quantity=1).order
    settings.SECKILL_ACK = "reserved"  # an order of the customer's still being written ("confirming")
    confirming = purchase(activity_id=live.pk, user=customer, quantity=1).number
    settings.SECKILL_ACK = "committed"
    _KNOWN.clear()
    _KNOWN.update(
        number=[o.number for o in own] + [theirs.number, bought.number, confirming],
        activity_id=[live.pk, upcoming.pk],
        slug=[product.slug],
    )
    yield Known(
        token=Token.objects.create(user=customer).key,
        victims=[theirs.number, bought.number],
    )
    _KNOWN.clear()


# Loaded once, at collection: the schema view needs neither the database nor a login.
# (schemathesis.pytest.from_fixture would load it per test, but does not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
_KNOWN = {}  # path parameter name -> values that exist in the running test's database


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the cases use rows that exist, so the fuzzer gets past the 404s."""
    existing = {name: st.sampled_from(_KNOWN[name]) for name in path_parameters or {} if _KNOWN.get(name)}
    if not existing:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**path_parameters, **existing}))


def errors_are_json_code_and_detail(ctx, response, case):
    """Every 4xx and 5xx of the API is JSON with a string `code` and a string `detail`."""
    if response.status_code < 400:
        return True
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {response.text[:200]}"
    assert isinstance(body.get("code"), str) and body["code"], f"no code: {body}"
    assert isinstance(body.get("detail"), str) and body["detail"], f"no detail: {body}"
    return True


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema_and_never_5xx(case, known):
    excluded = []
    if case.operation.path == "/api/auth/token/":
        # Generated credentials are schema-valid but wrong, and wrong credentials are a
        # documented 400; every other check (no 5xx, schema, {code, detail}) still runs.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        headers={"Authorization": f"Token {known.token}"},
        additional_checks=[errors_are_json_code_and_detail],
        excluded_checks=excluded,
    )
    # IDOR: whatever the customer's fuzzer sent, the other customer's orders did not move.
    assert set(Order.objects.filter(number__in=known.victims).values_list("status", flat=True)) == {"pending_payment"}


def test_the_schema_generates_without_a_warning(tmp_path):
    """A warning means a guessed type (e.g. a property without a type hint shown as a
    string): the fuzzer would then check responses against a wrong schema."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/seckill/activities/{activity_id}/token/" in (tmp_path / "schema.yaml").read_text()

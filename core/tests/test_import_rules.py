"""The import rules of pyproject.toml ([tool.importlinter]) hold, and would catch a break.

The first test is `lint-imports` on the real code. The others add one forbidden
import to the real import graph and check that a contract breaks, so a contract that
was mistyped into never failing cannot pass unnoticed.
"""

from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.application.use_cases import lint_imports, read_user_options
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

configuration.configure()  # what the lint-imports command does before it reads its options

PYPROJECT = str(Path(__file__).resolve().parents[2] / "pyproject.toml")
TYPES = {"layers": LayersContract, "forbidden": ForbiddenContract, "acyclic_siblings": AcyclicSiblingsContract}


@pytest.fixture(scope="module")
def options():
    return read_user_options(PYPROJECT)


@pytest.fixture
def graph(options):
    return grimp.build_graph(*options.session_options["root_packages"], cache_dir=None)


def broken(options, graph):
    """Names of the contracts the graph breaks."""
    names = []
    for spec in options.contracts_options:
        spec = dict(spec)
        contract = TYPES[spec.pop("type")](spec.pop("name"), options.session_options, spec)
        if not contract.check(graph, verbose=False).kept:
            names.append(contract.name)
    return names


def test_the_code_keeps_every_import_contract(options):
    """`lint-imports`, as a developer runs it (it prints the report on failure)."""
    assert len(options.contracts_options) >= 4
    assert lint_imports(config_filename=PYPROJECT, cache_dir=None, no_logo=True) is True


def test_the_unchanged_graph_breaks_nothing(options, graph):
    assert broken(options, graph) == []


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("core.errors", "seckill.models", "Apps depend one way"),  # the shared core reaching up
        ("orders.services", "seckill.stock", "Apps depend one way"),  # orders knowing the flash sale
        ("locks.redis_lock", "shop.models", "Apps depend one way"),  # the lock library importing the shop
        ("orders.services", "accounts.lockout", "Only shop may use accounts"),
        ("orders.services", "locks.redis_lock", "The catalogue and orders take no lock"),
        ("seckill.cache", "seckill.purchase", "No import cycle"),  # purchase imports cache already
        ("seckill.services.lifecycle", "seckill.tasks", "No import cycle"),  # tasks import the services
    ],
)
def test_a_forbidden_import_breaks_its_contract(options, graph, importer, imported, contract):
    graph.add_import(importer=importer, imported=imported)
    assert any(name.startswith(contract) for name in broken(options, graph))

"""`make test-fast` starts no service. It runs the tests not marked `platform`; tests/conftest.py
marks every test that requests the `platform` fixture, so what is left to prove is that no other
test, and no fixture such a test requests, starts services itself."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable

import pytest

from tests import postgres, support

# The helpers that start services, by the name they are called with. A runtime's `up()` and the
# CLI's `up` are left out: tests call them too to see them refuse (a port taken, a tool missing).
STARTERS = {
    "running_platform": support,
    "postgres_server": postgres,
    "PostgresServer": postgres,
}


@functools.cache
def starts_services(function: Callable) -> str | None:
    """The first call in ``function``'s source that starts services, or None."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name in STARTERS:
            return f"{ast.unparse(node.func)}()"
    return None


def _own_fixtures(item: pytest.Function) -> list[Callable]:
    """The fixture functions of this suite that ``item`` gets, the overriding one of each name."""
    defs = item._fixtureinfo.name2fixturedefs
    functions = (defs[name][-1].func for name in item.fixturenames if defs.get(name))
    return [f for f in functions if f.__module__.startswith("tests.")]


def test_no_test_outside_the_platform_mark_starts_services(request: pytest.FixtureRequest) -> None:
    offenders = []
    for item in request.session.items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker("platform"):
            continue
        for function in [item.function, *_own_fixtures(item)]:
            call = starts_services(function)
            if call is not None:
                offenders.append(f"{item.nodeid}: {function.__qualname__} calls {call}")
    assert not offenders, (
        "tests in the fast lane that start services; request the `platform` fixture or mark "
        "them `@pytest.mark.platform`:\n" + "\n".join(offenders)
    )


def _starts_a_platform() -> None:
    with support.running_platform(["mlflow"]):
        pass


def _starts_postgres() -> None:
    with postgres.postgres_server():
        pass


def _reads_settings(settings) -> None:
    settings.paths.ensure()


@pytest.mark.parametrize(
    ("function", "call"),
    [
        (_starts_a_platform, "support.running_platform()"),
        (_starts_postgres, "postgres.postgres_server()"),
        (_reads_settings, None),
    ],
)
def test_the_check_recognises_what_starts_services(function: Callable, call: str | None) -> None:
    assert starts_services(function) == call


def test_the_starters_are_the_helpers_tests_call() -> None:
    """A renamed helper would leave the check looking for a name nobody calls."""
    for name, module in STARTERS.items():
        assert callable(getattr(module, name, None)), f"{module.__name__}.{name} is gone"

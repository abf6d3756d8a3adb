"""Fixtures that start real platform processes on free ports in temp dirs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from mlops_lab.runtime.local import LocalRuntime
from mlops_lab.settings import Settings
from tests.support import make_settings


@pytest.fixture(scope="session")
def lab() -> Iterator[Settings]:
    """One running platform (every service) shared by the tests that only use it.

    Tests that stop, restart or break services must start their own with
    :func:`tests.support.make_settings` and :class:`LocalRuntime` instead.
    """
    settings = make_settings()
    runtime = LocalRuntime(settings)
    try:
        runtime.up()
        yield settings
    finally:
        runtime.down()
        shutil.rmtree(settings.home, ignore_errors=True)

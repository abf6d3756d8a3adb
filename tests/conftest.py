"""Fixtures shared by every test area. Area conftests start the services they need with
:func:`tests.support.running_platform`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from mlops_lab.core.settings import Settings
from tests.support import make_settings


@pytest.fixture
def lab_settings() -> Iterator[Settings]:
    """Settings for a platform that is not started: free ports, a temp data dir removed after."""
    settings = make_settings()
    yield settings
    shutil.rmtree(settings.home, ignore_errors=True)

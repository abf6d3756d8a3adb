"""A whole platform (every service in SERVICES) started through the CLI, as `make up` does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from subprocess import CompletedProcess

import pytest

from mlops_lab.core.settings import Settings
from tests.support import make_settings, run_cli


@dataclass(frozen=True)
class StartedPlatform:
    settings: Settings
    up: CompletedProcess[str]


@pytest.fixture(scope="module")
def platform() -> Iterator[StartedPlatform]:
    settings = make_settings()
    result = run_cli(settings, "up")
    try:
        assert result.returncode == 0, f"`up` failed:\n{result.stdout}\n{result.stderr}"
        yield StartedPlatform(settings, result)
    finally:
        run_cli(settings, "down")
        shutil.rmtree(settings.home, ignore_errors=True)

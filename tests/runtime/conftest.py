"""A whole platform (every service in SERVICES) started through the CLI, as `make up` does."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from subprocess import CompletedProcess

import pytest

from platform_core.settings import Settings
from tests.support import free_ports, make_settings, run_cli

# The platform's prediction log URL carries a password, as a PostgreSQL one would. Nothing
# listens on its port: serving and the drift monitor connect lazily and report the log as down,
# which is all these tests need; they check the password never lands in a file or an output.
LOG_PASSWORD = f"pw-{secrets.token_hex(8)}"


def log_url(password: str) -> str:
    return f"postgresql+psycopg://lab:{password}@127.0.0.1:{free_ports(1)[0]}/lab"


@dataclass(frozen=True)
class StartedPlatform:
    settings: Settings
    up: CompletedProcess[str]


# One platform for the whole package: starting one takes a minute or more.
@pytest.fixture(scope="package")
def platform() -> Iterator[StartedPlatform]:
    settings = make_settings(prediction_log_url=log_url(LOG_PASSWORD))
    result = run_cli(settings, "up")
    try:
        assert result.returncode == 0, f"`up` failed:\n{result.stdout}\n{result.stderr}"
        yield StartedPlatform(settings, result)
    finally:
        run_cli(settings, "down")
        shutil.rmtree(settings.home, ignore_errors=True)

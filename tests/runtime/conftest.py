"""A whole platform (every service in SERVICES) started through the CLI, as `make up` does."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from subprocess import CompletedProcess

import pytest

from platform_core.settings import Settings
from tests.support import free_ports, make_settings, remove_platform_files, run_cli

# The platform's prediction log URL carries a password, as a PostgreSQL one would. Nothing
# listens on its port: serving and the drift monitor connect lazily and report the log as down,
# which is all these tests need; they check the password never lands in a file or an output.
LOG_PASSWORD = f"pw-{secrets.token_hex(8)}"


def log_url(password: str) -> str:
    return f"postgresql+psycopg://lab:{password}@127.0.0.1:{free_ports(1)[0]}/lab"


@dataclass(frozen=True)
class StartedPlatform:
    settings: Settings
    up: CompletedProcess[str]  # the `up` that started it
    other_up: CompletedProcess[str]  # run at the same time on the same data dir


# One platform for the whole package: starting one takes a minute or more. Two `up`s start it
# at once, as two terminals (or `make up` twice) would: the tests check that they did not collide.
@pytest.fixture(scope="package")
def platform() -> Iterator[StartedPlatform]:
    settings = make_settings(prediction_log_url=log_url(LOG_PASSWORD))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli(settings, "up"), range(2)))
    try:
        starters = [r for r in results if "Platform is up" in r.stderr]
        assert starters, "no `up` started the platform:\n" + "\n".join(r.stderr for r in results)
        first = starters[0]
        assert first.returncode == 0, f"`up` failed:\n{first.stdout}\n{first.stderr}"
        yield StartedPlatform(settings, first, next(r for r in results if r is not first))
    finally:
        run_cli(settings, "down")
        remove_platform_files(settings)

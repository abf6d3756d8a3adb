"""The tests' forked `mlops-lab` answers as the command started as a subprocess does."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import cli_forks
from tests.support import env_for, make_settings, remove_platform_files, run_cli


@pytest.fixture
def two_platforms():
    settings = [make_settings(), make_settings()]
    yield settings
    for each in settings:
        remove_platform_files(each)


def test_a_forked_call_answers_as_the_subprocess_does(two_platforms) -> None:
    first, second = two_platforms
    for args in (("lab", "list"), ("status",), ("lab", "start", "99"), ("nonsense",)):
        forked = run_cli(first, *args)
        started = subprocess.run(
            [cli_forks.CLI, *args], env=env_for(first), capture_output=True, text=True
        )
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            started.returncode,
            started.stdout,
            started.stderr,
        ), args
    # Each call reads its own environment: the second platform's ports, not the first's.
    answers = [run_cli(each, "status") for each in (first, second, first)]
    for answer, each in zip(answers, (first, second, first), strict=True):
        assert f":{each.mlflow_port}" in answer.stdout, answer.stdout


def test_a_call_past_its_timeout_is_killed() -> None:
    read, write = os.pipe()
    sleeper = subprocess.Popen(["sleep", "60"], pass_fds=[write])
    os.close(write)
    try:
        assert cli_forks._exit_code(read, sleeper.pid, timeout=0.5) is None
        assert sleeper.wait(timeout=10) == -9
    finally:
        os.close(read)
        sleeper.kill()

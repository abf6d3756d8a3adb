"""No process of the platform runs MLflow's telemetry client: its thread mutates os.environ while
other threads iterate over it (a KeyError in the middle of a retrain), and nothing may leave a
closed network."""

from __future__ import annotations

import os
import subprocess
import sys

from platform_core.settings import Settings

# What mlflow reads as "this is CI or a test run": without them, as on a learner's machine.
_CI_MARKERS = {"CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY"}
_PROBE = (
    "import {module}, mlflow\n"
    "from mlflow.telemetry.client import get_telemetry_client\n"
    "print(get_telemetry_client() is None)\n"
)


def _learner_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CI_MARKERS and k != "DO_NOT_TRACK"}


def _telemetry_off(module: str, env: dict[str, str]) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip() == "True"


def test_the_cli_process_starts_without_mlflow_telemetry():
    assert _telemetry_off("mlops_lab.cli.main", _learner_env())


def test_services_are_started_without_mlflow_telemetry():
    env = _learner_env() | Settings().to_env()
    assert _telemetry_off("os", env)

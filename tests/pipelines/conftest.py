"""One platform for the pipeline tests: real MLflow, Prefect and the flows service.

Package-scoped, not session-scoped, so these ~1 GB of processes stop before other test packages
start theirs. The platform's own model name belongs to the CLI training tests and the retrain
deployment; any other test that registers models gets a model and experiment of its own
(``fresh``), so tests do not see each other's versions.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from platform_core.mlflow_client import ENV_KEYS as MLFLOW_CLIENT_ENV_KEYS
from platform_core.settings import Settings
from tests import support
from tests.support import run_cli, running_platform


@pytest.fixture(scope="package")
def platform() -> Iterator[Settings]:
    import mlflow

    with running_platform(["mlflow", "prefect", "flows"]) as settings:
        # `models:/` URIs in this process resolve against the test platform, whichever test
        # runs first (training in-process sets this too, but only once it has run).
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(settings.mlflow_url)
        mlflow.set_registry_uri(settings.mlflow_url)
        try:
            yield settings
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="package")
def prefect_api(platform: Settings) -> Iterator[None]:
    """Prefect clients in this process (flows, run_deployment) talk to the test platform."""
    with support.prefect_api(platform):
        yield


def with_own_model(platform: Settings) -> Settings:
    """The platform, with a registered model and an experiment no other test uses."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    return platform.model_copy(update={"model_name": name, "experiment_name": name})


@pytest.fixture
def fresh(platform: Settings) -> Settings:
    return with_own_model(platform)


@contextmanager
def environment_of(settings: Settings) -> Iterator[None]:
    """Flows called in this process read ``settings`` (they load them from the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.to_env().items():
            patch.setenv(key, value)
        # The flows set these for their process; undo that too, so no later test inherits them
        # (MLflow's own loaders switched off among them: test_registration uses them).
        for key in MLFLOW_CLIENT_ENV_KEYS:
            support.unset_until_undone(patch, key)
        yield


@pytest.fixture
def in_process(fresh: Settings, prefect_api: None) -> Iterator[Settings]:
    with environment_of(fresh):
        yield fresh


@dataclass(frozen=True)
class Trained:
    """What `mlops-lab train --json` printed, and its outcome."""

    process: subprocess.CompletedProcess[str]
    outcome: dict


def result_line(stderr: str) -> str:
    """The one-line result a command ends with (Rich may have wrapped it in narrow terminals)."""
    return " ".join(stderr.rsplit("✓", 1)[-1].split())


def cli_train(settings: Settings, *args: str) -> Trained:
    process = run_cli(settings, "train", *args, "--json")
    assert process.returncode == 0, process.stderr
    return Trained(process, json.loads(process.stdout))


@pytest.fixture(scope="package")
def first_train(platform: Settings) -> Trained:
    """The first model the platform ever trains: `mlops-lab train` on a small baseline."""
    return cli_train(platform, "--rows", "3000")

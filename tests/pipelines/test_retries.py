"""Which failures are retried: transient MLflow errors yes, wrong requests and bad data no."""

from __future__ import annotations

import contextlib

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)
from prefect import flow, task

from pipelines.tasks import MLFLOW_TASK_OPTIONS
from pipelines.transient import is_transient
from pipelines.validation import DataValidationError
from platform_core.probe import MlflowUnavailable, require_mlflow
from platform_core.settings import Settings


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("connection refused"),
        MlflowException("server busy", error_code=TEMPORARILY_UNAVAILABLE),
        # The client's wording for a 5xx or 429 whose body is not an MLflow error document.
        MlflowException(
            "API request to endpoint /api/2.0/mlflow/runs/create failed with error code 503 "
            "!= 200. Response body: 'Service Unavailable'"
        ),
        MlflowException(
            "API request to endpoint /api/2.0/mlflow/runs/create failed with error code 429 "
            "!= 200. Response body: ''"
        ),
    ],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST),
        # The default code, INTERNAL_ERROR, is what every client-side MlflowException gets.
        MlflowException("Model version 3 has no artifacts at 'model'"),
        MlflowException("API request failed: 503"),  # a number in a message is not a status
        MlflowException(
            "API request to endpoint /api/2.0/mlflow/runs/get failed with error code 404 "
            "!= 200. Response body: ''"
        ),
        DataValidationError("data.csv", ["the file is empty"]),
        ValueError("a bug"),
    ],
)
def test_other_errors_are_not_retried(error: Exception) -> None:
    assert not is_transient(error)


def test_mlflow_down_is_named_with_its_url(unstarted_settings: Settings) -> None:
    with pytest.raises(
        MlflowUnavailable, match=f"not reachable at {unstarted_settings.mlflow_url}"
    ):
        require_mlflow(unstarted_settings)


def run_failing_task(errors: list[Exception]) -> int:
    """Run a task with the MLflow steps' retry options that raises ``errors`` in turn."""
    attempts = []

    @task(**{**MLFLOW_TASK_OPTIONS, "retry_delay_seconds": 0})
    def step() -> None:
        attempts.append(1)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]

    @flow
    def steps() -> None:
        step()

    with contextlib.suppress(Exception):  # the attempts tell the story, not the final state
        steps()
    return len(attempts)


def test_a_task_recovers_from_a_dropped_connection(prefect_api: None) -> None:
    attempts = run_failing_task([requests.exceptions.ConnectionError("reset by peer")])

    assert attempts == 2


def test_a_task_does_not_retry_a_wrong_request(prefect_api: None) -> None:
    attempts = run_failing_task([MlflowException("nope", error_code=INVALID_PARAMETER_VALUE)])

    assert attempts == 1


def test_a_task_does_not_retry_a_deterministic_mlflow_error(prefect_api: None) -> None:
    attempts = run_failing_task([MlflowException("Model version 3 has no artifacts at 'model'")])

    assert attempts == 1

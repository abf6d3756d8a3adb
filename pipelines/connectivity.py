"""Reaching the platform's servers: fail fast when one is down, retry only what is worth it.

The MLflow client retries each HTTP call 7 times with exponential backoff by default, which
turns "MLflow is down" into a four-minute hang. Here a down server is detected up front with one
health check, the client's own retries are bounded to a few seconds, and the flow's tasks retry
transient failures (connection drops, 5xx) visibly, one log line per attempt.
"""

from __future__ import annotations

import os

from mlops_lab.errors import LabError
from mlops_lab.runtime.health import probe
from mlops_lab.settings import Settings

# Environment the MLflow client reads on every request: ~7 s of backoff per call at most.
CLIENT_RETRY_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}

# MLflow error codes that mean "try again later", not "your request is wrong".
_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


class Unreachable(LabError):
    def __init__(self, what: str, url: str, detail: str) -> None:
        super().__init__(
            f"{what} is not reachable at {url} ({detail}).",
            hint="Run `make up` to start the platform, or `make status` to see what is wrong.",
        )


class MlflowUnavailable(Unreachable):
    def __init__(self, settings: Settings, detail: str) -> None:
        super().__init__("MLflow", settings.mlflow_url, detail)


class PrefectUnavailable(Unreachable):
    def __init__(self, settings: Settings, detail: str) -> None:
        super().__init__("Prefect", settings.prefect_api_url, detail)


def require_mlflow(settings: Settings) -> None:
    if not (health := probe(f"{settings.mlflow_url}/health", timeout_s=5.0)).healthy:
        raise MlflowUnavailable(settings, health.detail)


def require_prefect(settings: Settings) -> None:
    if not (health := probe(f"{settings.prefect_api_url}/health", timeout_s=5.0)).healthy:
        raise PrefectUnavailable(settings, health.detail)


def bound_client_retries() -> None:
    """Apply :data:`CLIENT_RETRY_ENV` to this process, unless the user set those variables."""
    for key, value in CLIENT_RETRY_ENV.items():
        os.environ.setdefault(key, value)


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later can succeed."""
    from mlflow.exceptions import MlflowException
    from requests import exceptions as requests_errors

    if isinstance(error, requests_errors.ConnectionError | requests_errors.Timeout):
        return True
    if isinstance(error, MlflowException):
        return error.error_code in _TRANSIENT_CODES
    return isinstance(error, ConnectionError | TimeoutError)

"""How long each part of the platform waits for MLflow: one table, applied per process.

The MLflow client retries every HTTP call 7 times with exponential backoff by default, which
turns "MLflow is down" into a hang of minutes. Each process picks the patience that fits what it
does with an answer, and :func:`apply` sets the client's environment variables (it reads them on
every request) so nothing inherited from the shell that ran `up` can stretch them. It also
switches off MLflow's own model loaders in that process (``NO_PICKLE``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from platform_core import telemetry


@dataclass(frozen=True)
class Patience:
    max_retries: int
    backoff_factor: float
    timeout_s: float

    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": f"{self.backoff_factor:g}",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": f"{self.timeout_s:g}",
        }


# Serving polls the champion alias: the next poll is the retry, and an outage must show (and the
# last good model keep answering) within one poll.
SERVING = Patience(max_retries=0, backoff_factor=0, timeout_s=10)
# The drift monitor checks on an interval: one check waits seconds, the next one tries again.
MONITOR = Patience(max_retries=1, backoff_factor=1, timeout_s=20)
# Training flows and CLI commands ride out a restart (about 7 s of backoff per call); Prefect
# tasks retry transient errors on top of that, one log line per attempt.
PIPELINE = Patience(max_retries=3, backoff_factor=1, timeout_s=60)

# MLflow's own model loaders deserialize whatever a registered model's MLmodel asks for: pickle,
# cloudpickle, or skops with a trust list the artifact writes itself. The platform loads models
# only through platform_core.model_trust, so its processes switch those loaders off: a call to
# one that slips in fails instead of running what a registered model holds.
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
NO_PICKLE = {PICKLE_SWITCH: "false"}

ENV_KEYS = (*SERVING.env(), *NO_PICKLE)


def apply(patience: Patience) -> None:
    """Make this process's MLflow client wait as ``patience`` says, without telemetry and
    without MLflow's own model loaders."""
    os.environ.update(patience.env())
    os.environ.update(NO_PICKLE)
    os.environ.update(telemetry.OFF)


class _InputExampleCheckCannotLoad(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Failed to validate serving input example")
            and PICKLE_SWITCH in message
        )


@contextmanager
def quiet_input_example_check() -> Iterator[None]:
    """While a model is logged, MLflow does not warn that it could not check the input example.

    ``log_model`` checks an input example by loading the model back through MLflow's own loader,
    which :data:`NO_PICKLE` switches off: the check cannot run, and its warning would say so on
    every training run. Only that warning is dropped; the check failing for another reason is
    still reported. The platform proves a version loads its own way: serving scores the
    version's reference rows with it before serving it.
    """
    log = logging.getLogger("mlflow.models.model")
    quiet = _InputExampleCheckCannotLoad()
    log.addFilter(quiet)
    try:
        yield
    finally:
        log.removeFilter(quiet)

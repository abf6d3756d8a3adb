"""How long each part of the platform waits for MLflow: one table, applied per process.

The MLflow client retries every HTTP call 7 times with exponential backoff by default, which
turns "MLflow is down" into a hang of minutes. Each process picks the patience that fits what it
does with an answer, and :func:`apply` sets the client's environment variables (it reads them on
every request) so nothing inherited from the shell that ran `up` can stretch them.
"""

from __future__ import annotations

import os
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

ENV_KEYS = tuple(SERVING.env())


def apply(patience: Patience) -> None:
    """Make this process's MLflow client wait as ``patience`` says, without telemetry."""
    os.environ.update(patience.env())
    os.environ.update(telemetry.OFF)

"""How the serving process is started, for the local runtime and for the container image alike.

Kept free of BentoML and MLflow imports: the CLI reads it on every command.
"""

from __future__ import annotations

from mlops_lab.runtime.binaries import venv_bin
from mlops_lab.settings import REPO_ROOT, Settings

SERVICE = "serving.service:Serving"


def command(settings: Settings) -> list[str]:
    return [
        str(venv_bin("bentoml")),
        "serve",
        SERVICE,
        "--host",
        settings.host,
        "--port",
        str(settings.serving_port),
        "--working-dir",
        str(REPO_ROOT),
    ]


def env(settings: Settings) -> dict[str, str]:
    return {
        # BentoML wipes $BENTOML_HOME/prometheus_multiproc_dir when it starts: two platforms
        # sharing ~/bentoml would erase each other's metrics.
        "BENTOML_HOME": str(settings.home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        # The watcher's poll is the retry, and an outage must show within one poll; set here so
        # values inherited from the shell that ran `up` cannot stretch a poll to minutes.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    }

"""`python -m serving`: start the serving API on the host and port the settings name.

The local runtime and the container image both start serving this way, so its port, host and
MLflow patience come from the same settings wherever it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platform_core import mlflow_client
from platform_core.paths import private_dir
from platform_core.settings import REPO_ROOT, Settings, get_settings

SERVICE = "serving.service:Serving"


def command(settings: Settings) -> list[str]:
    return [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        SERVICE,
        "--host",
        settings.host,
        "--port",
        str(settings.serving_port),
        "--working-dir",
        str(REPO_ROOT),
    ]


def environment(settings: Settings, inherited: dict[str, str]) -> dict[str, str]:
    """What bentoml runs with: the inherited environment, BentoML's defaults for this platform,
    and serving's MLflow patience, which nothing inherited may stretch."""
    defaults = {
        # BentoML wipes $BENTOML_HOME/prometheus_multiproc_dir when it starts: two platforms
        # sharing ~/bentoml would erase each other's metrics.
        "BENTOML_HOME": str(settings.home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    return {**defaults, **inherited, **mlflow_client.SERVING.env()}


def main() -> None:
    settings = get_settings()
    private_dir(settings.home)
    argv = command(settings)
    os.execve(argv[0], argv, environment(settings, dict(os.environ)))


if __name__ == "__main__":
    main()

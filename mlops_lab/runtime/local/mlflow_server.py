"""``mlflow server ARGS`` without its idle parent (run as ``python -m`` this module).

``mlflow server`` validates its options, prepares the database and the environment, then starts
uvicorn as a child and waits for it: the waiting parent keeps the whole of MLflow imported, about
250 MiB of resident memory that serves nothing. This runs the same command, with the same
options, checks and environment, but replaces the parent with the uvicorn command (``exec``)
instead of starting it as a child. The server is identical; supervisord's process is the server
itself, so its signals reach uvicorn directly (mlflow's parent only forwarded them). The one
thing the parent would do after starting uvicorn is the job runner, which the platform turns
off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``, runtime/services.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence


def _exec_instead(
    cmd: Sequence[str], *, extra_env: Mapping[str, str] | None = None, **_options: object
) -> None:
    """Stands in for mlflow's ``_exec_cmd(cmd, extra_env=..., synchronous=False)``."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], list(cmd), {**os.environ, **(extra_env or {})})


def main() -> None:
    import mlflow.server
    from mlflow.cli import cli

    if not callable(getattr(mlflow.server, "_exec_cmd", None)):
        # Another MLflow than the locked one: run it unchanged rather than guess.
        os.execv(sys.executable, [sys.executable, "-m", "mlflow", "server", *sys.argv[1:]])
    # Replacing MLflow's private launcher is the point of this module (checked just above).
    mlflow.server._exec_cmd = _exec_instead  # pyright: ignore[reportPrivateImportUsage]
    cli.main(args=["server", *sys.argv[1:]], prog_name="mlflow")


if __name__ == "__main__":
    main()

"""No process of the platform sends telemetry: the variables that say so, in one place.

MLflow starts its telemetry client when it is imported, and its thread sets and unsets a variable
of its own in os.environ while other threads iterate over it (a KeyError in the middle of a
retrain); a platform on a closed network has nothing to send anyway. Services get these through
``Settings.to_env()``, the MLflow client through ``mlflow_client.apply``, and the CLI's process
through :func:`switch_off` before anything in it imports mlflow.
"""

from __future__ import annotations

import os

OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def switch_off() -> None:
    """Turn telemetry off in this process unless the environment already says otherwise."""
    for key, value in OFF.items():
        os.environ.setdefault(key, value)

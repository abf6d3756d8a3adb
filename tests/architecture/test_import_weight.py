"""Long-running processes that only coordinate hold no data-science stack.

The flows runner registers two deployments and runs each flow run in a subprocess; BentoML's
supervising parent imports the service module only to read its configuration, while the model
lives in the worker. pandas (with pyarrow), scikit-learn and MLflow cost them about 300 MiB of
the platform's memory goal (1.5 GiB, `make bench`) and seconds of start-up, and they were there
through module-level imports nobody needed in those processes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from platform_core.settings import REPO_ROOT

HEAVY = ("pandas", "pyarrow", "sklearn", "mlflow", "evidently")


def loaded_heavy_modules(module: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter holds after importing ``module``."""
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    [
        "pipelines.runner",  # what the flows service runs before it serves the deployments...
        "pipelines.flows",  # ...which it imports to build them
        "serving.service",  # what BentoML's supervising parent imports
        "platform_core.contract",
        "platform_core.prediction_log",
    ],
)
def test_a_coordinating_process_imports_no_data_stack(module: str) -> None:
    assert loaded_heavy_modules(module) == []


def test_a_flow_run_still_gets_its_steps() -> None:
    """The steps load when a flow runs: the import moved, it did not go away."""
    from pipelines import flows

    tasks = flows.steps()
    assert "sklearn" in sys.modules
    assert tasks.fit.name == "fit"

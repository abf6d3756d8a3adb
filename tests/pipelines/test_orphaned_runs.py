"""A run the flows service was executing when it stopped does not stay Running for ever.

The service runs each flow run in a subprocess, which stops with it (supervisord stops the
process group; a pod's containers stop together). Nothing else would ever end the run's state:
whoever waits for it (a lab reset, `mlops-lab retrain --wait`) would wait until its timeout.
"""

from __future__ import annotations

import time

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from mlops_lab.core.settings import Settings
from tests.pipelines.conftest import with_own_model
from tests.support import run_cli

# Enough rows that the fit is still running when the service is told to restart.
ROWS = 200_000


def _state(run_id) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state.type.value


def _wait_for(run_id, predicate, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while not predicate(state := _state(run_id)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return state


def test_a_restart_during_a_run_ends_the_run_as_crashed(
    platform: Settings, prefect_api: None
) -> None:
    own = with_own_model(platform)
    run = run_deployment(
        "train/train",
        parameters={"rows": ROWS, "model_name": own.model_name},
        timeout=0,
    )
    assert _wait_for(run.id, lambda s: s != "SCHEDULED" and s != "PENDING", 120) == "RUNNING"

    log = platform.paths.logs / "flows.log"
    logged_before = log.stat().st_size
    restarted = run_cli(platform, "restart", "flows")
    assert restarted.returncode == 0, restarted.stderr

    state = _wait_for(run.id, lambda s: s not in ("RUNNING", "PENDING", "CANCELLING"), 60)
    assert state == "CRASHED"
    with get_client(sync_client=True) as client:
        message = client.read_flow_run(run.id).state.message
    assert "flows service" in message and "stopped" in message
    with log.open() as handle:
        handle.seek(logged_before)
        since_restart = handle.read()
    assert "marked Crashed" in since_restart
    assert "Traceback" not in since_restart, since_restart


def test_the_restarted_service_still_runs_new_runs(platform: Settings, prefect_api: None) -> None:
    own = with_own_model(platform)
    run = run_deployment(
        "train/train", parameters={"rows": 2_000, "model_name": own.model_name}, timeout=300
    )
    assert run.state is not None and run.state.is_completed(), run.state

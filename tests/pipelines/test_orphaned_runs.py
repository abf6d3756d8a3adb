"""A run the flows service was executing when it stopped does not stay Running for ever.

The service runs each flow run in a subprocess, which stops with it (supervisord stops the
process group; a pod's containers stop together). Nothing else would ever end the run's state:
whoever waits for it (a lab reset, `mlops-lab retrain --wait`) would wait until its timeout.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from pipelines.runner import IN_FLIGHT
from platform_core.settings import Settings
from tests.pipelines.conftest import with_own_model
from tests.support import run_cli, wait_for

# Enough rows that the fit is still running when the service is told to restart.
ROWS = 200_000


def _state_out_of(run_id, states: tuple[str, ...]) -> str | None:
    """The run's state type, once it is none of ``states``."""
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    assert state is not None, f"flow run {run_id} has no state"
    return None if state.type.value in states else state.type.value


def test_a_restart_during_a_run_ends_the_run_as_crashed(
    platform: Settings, prefect_api: None
) -> None:
    own = with_own_model(platform)
    # Prefect types run_deployment as maybe a coroutine (its sync/async dispatch); called from
    # sync code it returns the FlowRun.
    run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
        "train/train",
        parameters={"rows": ROWS, "model_name": own.model_name},
        timeout=0,
    )
    log = platform.paths.logs / "flows.log"
    started = wait_for(
        lambda: _state_out_of(run.id, ("SCHEDULED", "PENDING")), 120, what="the run to start"
    )
    assert started == "RUNNING"

    logged_before = log.stat().st_size
    restarted = run_cli(platform, "restart", "flows")
    assert restarted.returncode == 0, restarted.stderr

    state = wait_for(lambda: _state_out_of(run.id, IN_FLIGHT), 60, what="the run to end", log=log)
    assert state == "CRASHED"
    with get_client(sync_client=True) as client:
        ended = client.read_flow_run(run.id).state
    assert ended is not None and ended.message is not None, ended
    assert "flows service" in ended.message and "stopped" in ended.message
    with log.open() as handle:
        handle.seek(logged_before)
        since_restart = handle.read()
    assert "marked Crashed" in since_restart
    assert "Traceback" not in since_restart, since_restart


def test_the_restarted_service_still_runs_new_runs(platform: Settings, prefect_api: None) -> None:
    own = with_own_model(platform)
    # Called from sync code: a FlowRun, whatever Prefect's sync/async dispatch is typed as.
    run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
        "train/train", parameters={"rows": 2_000, "model_name": own.model_name}, timeout=300
    )
    assert run.state is not None and run.state.is_completed(), run.state

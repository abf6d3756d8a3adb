"""The flows service: train/train and retrain/retrain, startable through the Prefect API, and
rollout-decision/rollout-decision on its schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from pipelines import data, registry
from platform_core import contract
from platform_core.prediction_log import connect
from platform_core.settings import Settings
from tests.pipelines.conftest import Trained
from tests.support import log_predictions, wait_for

TRAFFIC_ROWS = 400
REASON = "test: drift alert on annual_income"


@pytest.mark.parametrize(
    "name", ["train/train", "retrain/retrain", "rollout-decision/rollout-decision"]
)
def test_deployment_is_served(name: str, platform: Settings, prefect_api: None) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)

    assert deployment.name == name.split("/")[1]


def test_rollout_decision_runs_on_the_check_interval_from_the_settings(
    platform: Settings, prefect_api: None
) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("rollout-decision/rollout-decision")

    [schedule] = deployment.schedules
    assert schedule.active
    interval = getattr(schedule.schedule, "interval", None)
    assert interval == timedelta(seconds=platform.rollout_check_interval_s)


def test_the_scheduler_schedules_rollout_decision_runs_by_itself(
    platform: Settings, prefect_api: None
) -> None:
    # Prefect's scheduler, not a test, must create the runs: with SQLAlchemy 2.1 it failed on
    # every insert ("Can't evaluate bulk DML statement") and no decision ever ran by itself.
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    def scheduled() -> list:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=["rollout-decision"])
                )
            )
        return [run for run in runs if run.auto_scheduled]

    wait_for(scheduled, 120, what="Prefect's scheduler to schedule rollout-decision runs")


def test_a_rollout_decision_run_without_a_rollout_completes_having_done_nothing(
    platform: Settings, prefect_api: None
) -> None:
    # Called from sync code: a FlowRun, whatever Prefect's sync/async dispatch is typed as.
    run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
        "rollout-decision/rollout-decision", timeout=300
    )

    assert run.state is not None and run.state.is_completed(), run.state

    def said_so() -> bool:
        # The run's process sends its log lines as it exits: maybe after the state changed.
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        return any("No rollout of" in log.message for log in logs)

    wait_for(said_so, 30, what="the run to log that there was no rollout to decide on")


@pytest.fixture(scope="module")
def retrained(platform: Settings, prefect_api: None, first_train: Trained) -> FlowRun:
    """A retrain started the way the alert receiver starts it: only a reason."""
    traffic = data.generate(TRAFFIC_ROWS, "concept_drift", seed=11)
    log_predictions(
        connect(platform.prediction_log_db_url), platform.model_name, traffic, "1", with_labels=True
    )
    # Prefect types run_deployment as maybe a coroutine (its sync/async dispatch); called from
    # sync code it returns the FlowRun.
    run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
        "retrain/retrain", parameters={"reason": REASON}, timeout=300
    )
    return run


def retrain_version(platform: Settings, run: FlowRun):
    client = contract.client_for(platform)
    [version] = client.search_model_versions(
        f"name = '{platform.model_name}' and tag.{contract.TAG_FLOW_RUN_ID} = '{run.id}'"
    )
    return version


def test_retrain_deployment_completes(retrained: FlowRun) -> None:
    assert retrained.state is not None and retrained.state.is_completed(), retrained.state


def test_retrain_registers_a_version_tagged_with_its_reason(
    platform: Settings, retrained: FlowRun
) -> None:
    version = retrain_version(platform, retrained)

    assert version.tags[contract.TAG_DATA_SOURCE] == f"retrain:{REASON}"


def test_retrain_learns_from_the_reference_plus_labelled_traffic(
    platform: Settings, retrained: FlowRun, first_train: Trained
) -> None:
    client = contract.client_for(platform)
    version = retrain_version(platform, retrained)
    assert version.run_id is not None, "the pipeline registers every version from its run"
    params = client.get_run(version.run_id).data.params

    reference_rows = 3000  # the first model's reference: all of its 3,000 rows
    assert int(params["rows_train"]) + int(params["rows_test"]) == reference_rows + TRAFFIC_ROWS


def test_retrain_goes_through_the_quality_gate(platform: Settings, retrained: FlowRun) -> None:
    version = retrain_version(platform, retrained)

    assert version.tags[registry.TAG_GATE_DECISION] in ("promoted", "rejected")
    assert version.tags[registry.TAG_GATE_REASON]

"""With MLflow stopped, the last good model keeps serving and the outage is visible."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlops_lab.runtime.local.runtime import LocalRuntime
from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, metric
from tests.support import wait_for


@pytest.fixture(scope="module")
def mlflow_down(platform: Platform) -> Iterator[Platform]:
    supervisor = LocalRuntime(platform.settings).supervisor
    supervisor.rpc.stopProcess("mlflow", True)
    try:
        wait_for(
            lambda: metric(platform.url, "serving_registry_reachable") == 0.0,
            30,
            what="serving to notice MLflow is down",
        )
        yield platform
    finally:
        supervisor.rpc.startProcess("mlflow", True)
        wait_for(
            lambda: metric(platform.url, "serving_registry_reachable") == 1.0,
            120,
            what="serving to reach MLflow again",
        )


def test_predictions_continue_while_mlflow_is_down(mlflow_down: Platform, http) -> None:
    records = records_from_frame(data.generate(3, seed=71), TYPES.names)
    response = http.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == mlflow_down.v1


def test_stays_ready_while_mlflow_is_down(mlflow_down: Platform, http) -> None:
    assert http.get("/readyz").status_code == 200


def test_the_outage_is_logged_once_with_the_served_version(mlflow_down: Platform) -> None:
    log = mlflow_down.settings.paths.log_file("serving").read_text()
    line = f"is unreachable (Connection refused); still serving version {mlflow_down.v1}"
    assert log.count(line) == 1

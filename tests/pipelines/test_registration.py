"""Registering a version: at most once per flow run, with a model that answers what it says."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
import requests
from mlflow.models import get_model_info

from pipelines import data, registry
from pipelines.flows import TrainOutcome, train
from platform_core import contract, mlflow_client
from platform_core.settings import Settings
from tests.models import TYPES
from tests.pipelines.conftest import environment_of, with_own_model
from tests.support import free_ports, wait_for


def test_a_retry_after_registration_reuses_the_version(
    in_process: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the version exists: the retry must not register another."""
    mark_challenger = registry.mark_challenger
    calls = []

    def drop_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise requests.exceptions.ConnectionError("connection reset after registration")
        return mark_challenger(*args, **kwargs)

    monkeypatch.setattr(registry, "mark_challenger", drop_once)

    outcome = train(rows=600)

    client = contract.client_for(in_process)
    versions = client.search_model_versions(f"name = '{in_process.model_name}'")
    experiment = client.get_experiment_by_name(in_process.experiment_name)
    assert experiment is not None, in_process.experiment_name
    runs = client.search_runs([experiment.experiment_id])
    assert len(calls) == 2  # the task was retried
    assert [v.version for v in versions] == ["1"]
    assert outcome.version == "1"
    assert [r.info.run_id for r in runs] == [outcome.mlflow_run_id]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_training_does_not_warn_that_mlflow_could_not_check_the_input_example(
    in_process: Settings,
) -> None:
    """The flows switch MLflow's own loaders off (mlflow_client.NO_PICKLE), so log_model cannot
    load the model back to check its input example: expected, not a warning on every run."""
    records = _Records()
    mlflow_log = logging.getLogger("mlflow.models.model")  # MLflow's loggers do not propagate
    mlflow_log.addHandler(records)
    try:
        train(rows=600)
    finally:
        mlflow_log.removeHandler(records)

    assert not [m for m in records.messages if "serving input example" in m]


@pytest.fixture(scope="module")
def trained(platform: Settings, prefect_api: None) -> tuple[Settings, TrainOutcome]:
    """One small training run of a model no other test uses."""
    settings = with_own_model(platform)
    with environment_of(settings):
        return settings, train(rows=600)


def test_pyfunc_answers_what_the_signature_says(
    trained: tuple[Settings, TrainOutcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's own loader, on purpose: the tool a learner would otherwise use. The platform's
    # processes switch it off (a flow run in this process switches it off here too).
    monkeypatch.setenv(mlflow_client.PICKLE_SWITCH, "true")
    settings, outcome = trained
    uri = contract.model_uri(settings, version=outcome.version)
    signature = get_model_info(uri).signature
    assert signature is not None, uri
    [output] = signature.outputs.inputs
    rows = contract.prepare_features(data.generate(20, seed=7), TYPES)

    answer = mlflow.pyfunc.load_model(uri).predict(rows)

    assert answer.dtype == output.type  # float64 probabilities, not int labels
    assert answer.shape[1:] == output.shape[1:] == (2,)
    expected = contract.load_sklearn_model(uri).predict_proba(rows)
    assert np.allclose(answer, expected)


def test_mlflow_models_serve_answers_with_probabilities(
    trained: tuple[Settings, TrainOutcome], tmp_path: Path
) -> None:
    settings, outcome = trained
    [port] = free_ports(1)
    rows = contract.prepare_features(data.generate(3, seed=8), TYPES)
    venv_bin = Path(sys.executable).parent  # mlflow runs `uvicorn` from PATH
    command = [
        *(str(venv_bin / "mlflow"), "models", "serve"),
        *("-m", contract.model_uri(settings, version=outcome.version)),
        *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
    ]
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_url,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        # `mlflow models serve` loads through MLflow's own loader, which the platform's
        # processes switch off (a flow run in this process would have switched it off here).
        mlflow_client.PICKLE_SWITCH: "true",
    }
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/ping").is_success, 120, what="mlflow serve", log=log)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        response = httpx.post(f"{url}/invocations", json=body, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert response.status_code == 200, response.text
    predictions = np.array(response.json()["predictions"])
    assert predictions.shape == (3, 2)
    assert np.allclose(predictions.sum(axis=1), 1.0)


def test_the_run_records_its_training_data_as_a_dataset(
    trained: tuple[Settings, TrainOutcome],
) -> None:
    settings, outcome = trained
    client = contract.client_for(settings)
    version = client.get_model_version(settings.model_name, outcome.version)

    inputs = client.get_run(outcome.mlflow_run_id).inputs
    assert inputs is not None, outcome.mlflow_run_id
    [used] = inputs.dataset_inputs
    source = json.loads(used.dataset.source)

    assert used.dataset.name == "scenario:baseline"
    assert used.dataset.digest == version.tags[contract.TAG_DATA_HASH]
    assert source["tags"] == {contract.TAG_DATA_SOURCE: "scenario:baseline"}
    assert [tag.value for tag in used.tags if tag.key == "mlflow.data.context"] == ["training"]

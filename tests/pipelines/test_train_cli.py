"""`mlops-lab train` on generated data: the first version, and everything it carries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
from mlflow.models import get_model_info
from prefect.client.orchestration import get_client
from pydantic import SecretStr

from pipelines import data, registry
from platform_core import contract
from platform_core.settings import Settings
from tests.pipelines.conftest import Trained, cli_train, result_line
from tests.support import env_for, free_ports, run_cli, scrape, wait_for


def test_first_train_registers_version_1_as_champion(platform: Settings, first_train: Trained):
    # Later tests may move the alias (a retrain can win): the history says who came first.
    first_champion = registry.history(contract.client_for(platform), platform)[0]

    assert first_train.outcome["version"] == "1"
    assert first_champion == "1"


def test_first_model_is_promoted_on_the_floor_alone(first_train: Trained) -> None:
    assert first_train.outcome["promoted"] is True
    assert first_train.outcome["reason"].startswith("first model; AUC")
    assert "reaches the floor" in first_train.outcome["reason"]


def test_train_ends_with_a_one_line_result(first_train: Trained) -> None:
    line = result_line(first_train.process.stderr)

    assert line.startswith("loan-default v1 (AUC ")
    assert "promoted to champion" in line


def test_version_has_a_signature_and_an_input_example(platform: Settings, first_train: Trained):
    info = get_model_info(contract.model_uri(platform, version="1"))

    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(data.FEATURE_NAMES)
    assert info.saved_input_example_info is not None


def test_version_carries_the_reference_sample_and_feature_types(
    platform: Settings, first_train: Trained
) -> None:
    client = contract.client_for(platform)
    version = client.get_model_version(platform.model_name, "1")

    reference = contract.load_reference(client, version)
    types = contract.load_feature_types(client, version)

    assert len(reference) == 3000  # all rows: fewer than reference_rows
    assert list(reference.columns) == [*data.FEATURE_NAMES, data.TARGET]
    assert types.kinds == {f.name: f.kind for f in data.FEATURES}


def test_version_carries_lineage_tags(platform: Settings, first_train: Trained) -> None:
    tags = contract.client_for(platform).get_model_version(platform.model_name, "1").tags

    assert tags[contract.TAG_DATA_SOURCE] == "scenario:baseline"
    assert len(tags[contract.TAG_DATA_HASH]) == 16
    assert tags[contract.TAG_CODE_VERSION] not in ("", "unknown")
    assert tags[contract.TAG_TARGET] == data.TARGET
    assert tags[contract.TAG_FLOW_RUN_ID] == first_train.outcome["flow_run_id"]


def test_flow_run_is_recorded_in_prefect(
    platform: Settings, prefect_api: None, first_train: Trained
) -> None:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(first_train.outcome["flow_run_id"])
        flow = client.read_flow(run.flow_id)

    assert flow.name == "train"
    assert run.state is not None and run.state.is_completed()


def test_registered_model_loads_and_predicts(platform: Settings, first_train: Trained) -> None:
    model = contract.load_sklearn_model(contract.model_uri(platform, version="1"))
    rows = data.generate(5, seed=99)
    types = contract.FeatureTypes({f.name: f.kind for f in data.FEATURES}, data.TARGET)

    probabilities = model.predict_proba(contract.prepare_features(rows, types))[:, 1]

    assert pd.Series(probabilities).between(0, 1).all()


def test_train_fails_fast_naming_mlflow_when_it_is_down(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "train")

    assert result.returncode == 1
    assert f"MLflow is not reachable at {unstarted_settings.mlflow_url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_on_a_csv_without_target_asks_for_it(
    unstarted_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "loans.csv"
    path.write_text("a,y\n1,0\n")

    result = run_cli(unstarted_settings, "train", "--data", str(path))

    assert result.returncode == 1
    assert "needs --target" in result.stderr


def test_train_says_when_serving_will_pick_up_the_champion(first_train: Trained) -> None:
    # This package's platform runs no serving.
    assert "Serving is not running: it will pick up loan-default v1 within" in (
        " ".join(first_train.process.stderr.split())
    )


def test_train_waits_until_serving_answers_with_the_new_champion(
    fresh: Settings, tmp_path: Path
) -> None:
    [port] = free_ports(1)
    settings = fresh.model_copy(
        update={
            "serving_port": port,
            "alias_poll_interval_s": 1.0,
            "prediction_log_url": SecretStr(f"sqlite:///{tmp_path / 'predictions.db'}"),
        }
    )
    metrics_url = settings.url(port, "/metrics")
    log = tmp_path / "serving.log"
    with log.open("w") as sink:
        serving = subprocess.Popen(
            [sys.executable, "-m", "serving"],
            env=env_for(settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        version_key = f'serving_model_version{{model_name="{settings.model_name}"}}'
        wait_for(lambda: version_key in scrape(metrics_url), 180, what="serving", log=log)

        trained = cli_train(settings, "--rows", "1000")
        served = scrape(metrics_url)[version_key]
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=60)

    assert trained.outcome["version"] == "1"
    assert "Serving answers with" in trained.process.stderr
    assert served == 1.0  # the moment `train` returned, `make traffic` would be answered by v1

"""Bring your own CSV: a good file trains and registers; each bad one fails, registering nothing.

The flow runs in this process (as `mlops-lab train` runs it) to keep the suite fast; one test
goes through the CLI to see what a learner sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import data
from pipelines.flows import TrainOutcome, train
from pipelines.validation import DataValidationError
from platform_core import contract
from platform_core.settings import Settings
from tests.pipelines.conftest import cli_train, environment_of, with_own_model
from tests.support import run_cli


@pytest.fixture(scope="module")
def own(platform: Settings) -> Settings:
    return with_own_model(platform)


@pytest.fixture(scope="module")
def csv_trained(
    own: Settings, prefect_api: None, tmp_path_factory: pytest.TempPathFactory
) -> TrainOutcome:
    """Loan data as a learner might export it: another target name, yes/no labels."""
    frame = data.generate(2500, seed=3).rename(columns={data.TARGET: "will_default"})
    frame["will_default"] = frame["will_default"].map({1: "yes", 0: "no"})
    path = Path(tmp_path_factory.mktemp("csv")) / "loans.csv"
    frame.to_csv(path, index=False)
    with environment_of(own):
        return train(data=str(path), target="will_default")


def test_csv_trains_and_registers_a_champion(own: Settings, csv_trained: TrainOutcome) -> None:
    champion = contract.champion(contract.client_for(own), own)

    assert csv_trained.version == "1"
    assert champion is not None and champion.version == "1"
    assert champion.tags[contract.TAG_DATA_SOURCE] == "file:loans.csv"
    assert champion.tags[contract.TAG_TARGET] == "will_default"


def test_csv_feature_types_are_inferred_and_recorded(own: Settings, csv_trained: TrainOutcome):
    client = contract.client_for(own)
    version = client.get_model_version(own.model_name, csv_trained.version)

    types = contract.load_feature_types(client, version)

    assert types.kinds == {f.name: f.kind for f in data.FEATURES}
    assert types.target == "will_default"


def nothing_written(settings: Settings) -> bool:
    client = contract.client_for(settings)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    models = client.search_registered_models(f"name = '{settings.model_name}'")
    return experiment is None and not models


def _missing_target(path: Path) -> None:
    data.generate(300, seed=1).drop(columns=[data.TARGET]).to_csv(path, index=False)


def _empty(path: Path) -> None:
    path.write_text("")


def _unparseable(path: Path) -> None:
    frame = data.generate(300, seed=1).astype({"credit_score": object})
    frame.loc[9, "credit_score"] = "7OO"  # letter O typed for zero
    frame.to_csv(path, index=False)


def _single_class(path: Path) -> None:
    data.generate(300, seed=1).assign(defaulted=0).to_csv(path, index=False)


def _too_few_rows(path: Path) -> None:
    data.generate(120, seed=1).to_csv(path, index=False)


BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing target column": (_missing_target, "there is no target column 'defaulted'"),
    "empty file": (_empty, "the file is empty"),
    "unparseable values": (
        _unparseable,
        r"column 'credit_score' holds numbers, but 1 values are not numbers \('7OO' at line 11\)",
    ),
    "single class": (_single_class, "the target 'defaulted' has a single class"),
    "too few rows": (_too_few_rows, "only 120 rows; training needs at least 200"),
}


@pytest.mark.parametrize("problem", BAD_FILES)
def test_bad_csv_fails_naming_the_problem_and_writes_nothing(
    problem: str, in_process: Settings, tmp_path: Path
) -> None:
    write, message = BAD_FILES[problem]
    path = tmp_path / "bad.csv"
    write(path)

    with pytest.raises(DataValidationError, match=message):
        train(data=str(path), target=data.TARGET)

    assert nothing_written(in_process)


def test_cli_reports_a_bad_csv_as_a_message_not_a_traceback(fresh: Settings, tmp_path: Path):
    path = tmp_path / "one-class.csv"
    _single_class(path)

    result = run_cli(fresh, "train", "--data", str(path), "--target", data.TARGET)

    assert result.returncode == 1
    assert "Error: " in result.stderr and "has a single class" in result.stderr
    assert "Nothing was logged or registered" in result.stderr
    assert "Traceback" not in result.stderr
    assert nothing_written(fresh)


def test_cli_registers_a_csv_as_a_model_named_after_the_file(
    platform: Settings, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    path = tmp_path / f"Applicants {suffix}.csv"
    data.generate(600, seed=4).to_csv(path, index=False)
    name = f"applicants-{suffix}"
    client = contract.client_for(platform)
    loan_versions = len(client.search_model_versions(f"name = '{platform.model_name}'"))

    trained = cli_train(platform, "--data", str(path), "--target", data.TARGET)

    assert trained.outcome["model_name"] == name
    assert (trained.outcome["version"], trained.outcome["promoted"]) == ("1", True)
    assert client.get_experiment_by_name(name) is not None
    assert len(client.search_model_versions(f"name = '{platform.model_name}'")) == loan_versions
    stderr = " ".join(trained.process.stderr.split())
    assert f"MLOPS_LAB_MODEL_NAME={name}" in stderr
    assert "make down && make up" in stderr


def test_cli_model_name_option_names_the_model(platform: Settings, tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    data.generate(600, seed=4).to_csv(path, index=False)
    name = f"credit-{uuid.uuid4().hex[:6]}"

    trained = cli_train(
        platform, "--data", str(path), "--target", data.TARGET, "--model-name", name
    )

    assert trained.outcome["model_name"] == name
    assert contract.champion(contract.client_for(platform), own_name(platform, name)) is not None


def test_cli_refuses_a_model_name_mlflow_cannot_register(
    unstarted_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "loans.csv"
    path.write_text("a,y\n1,0\n")

    result = run_cli(
        unstarted_settings, "train", "--data", str(path), "--target", "y", "--model-name", "a/b"
    )

    assert result.returncode == 1
    assert "'a/b' cannot be a model name" in result.stderr
    assert "Traceback" not in result.stderr


def own_name(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"model_name": name, "experiment_name": name})

"""Where training data comes from: scenarios, and the prediction log a retrain reads."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from mlops_lab.core.prediction_log import connect
from pipelines import data, sources
from pipelines.validation import DataValidationError
from tests.support import log_predictions

TYPES = sources.generated_types()


def test_missing_prediction_log_gives_no_traffic_and_says_so(tmp_path: Path) -> None:
    traffic = sources.labelled_traffic(f"sqlite:///{tmp_path / 'none.db'}", 100, TYPES)

    assert traffic.frame.empty
    assert "no prediction log yet" in traffic.note
    assert not (tmp_path / "none.db").exists()


def test_unlabelled_predictions_are_not_training_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_predictions(connect(url), "loan-default", data.generate(20, seed=1), "1")

    traffic = sources.labelled_traffic(url, 100, TYPES)

    assert traffic.frame.empty
    assert "no labelled predictions" in traffic.note


def test_labelled_predictions_become_rows_with_the_target(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    logged = data.generate(30, seed=1)
    log_predictions(connect(url), "loan-default", logged, "1", with_labels=True)

    traffic = sources.labelled_traffic(url, 100, TYPES)

    assert list(traffic.frame.columns) == [*TYPES.names, TYPES.target]
    assert traffic.frame[TYPES.target].tolist() == logged[data.TARGET].tolist()


def test_retraining_data_is_reference_plus_traffic() -> None:
    reference = data.generate(50, seed=1)
    traffic = sources.Traffic(data.generate(20, seed=2), "20 labelled predictions")

    loaded = sources.for_retraining(reference, traffic, TYPES, reason="drift on income")

    assert len(loaded.frame) == 70
    assert loaded.source == "retrain:drift on income"


def test_unknown_scenario_names_the_choices() -> None:
    with pytest.raises(DataValidationError, match="choose one of: baseline, covariate_shift"):
        sources.from_scenario("nope", 100, 1)


def test_flow_scenario_choices_match_the_generator() -> None:
    from pipelines.flows import ScenarioName

    assert get_args(ScenarioName) == data.SCENARIOS

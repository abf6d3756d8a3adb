"""Where training data comes from: scenarios, and the prediction log a retrain reads."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from pipelines import data, sources
from pipelines.lineage import TAG_REFERENCE_OF
from pipelines.validation import DataValidationError
from platform_core.prediction_log import connect, read_recent
from tests.support import log_predictions

TYPES = sources.generated_types()
MODEL = "loan-default"


def test_missing_prediction_log_gives_no_traffic_and_says_so(tmp_path: Path) -> None:
    traffic = sources.labelled_traffic(f"sqlite:///{tmp_path / 'none.db'}", MODEL, 100, TYPES)

    assert traffic.frame.empty
    assert "no prediction log yet" in traffic.note
    assert not (tmp_path / "none.db").exists()


def test_unlabelled_predictions_are_not_training_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_predictions(connect(url), MODEL, data.generate(20, seed=1), "1")

    traffic = sources.labelled_traffic(url, MODEL, 100, TYPES)

    assert traffic.frame.empty
    assert "no labelled predictions" in traffic.note


def test_labelled_predictions_become_rows_with_the_target(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    logged = data.generate(30, seed=1)
    log_predictions(connect(url), MODEL, logged, "1", with_labels=True)

    traffic = sources.labelled_traffic(url, MODEL, 100, TYPES)

    assert list(traffic.frame.columns) == [*TYPES.names, TYPES.target]
    assert traffic.frame[TYPES.target].tolist() == logged[data.TARGET].tolist()


def two_models_log(tmp_path: Path) -> str:
    """A shared log: 30 labelled rows of MODEL, then 40 newer ones of another model."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = connect(url)
    log_predictions(engine, MODEL, data.generate(30, seed=1), "1", with_labels=True)
    log_predictions(engine, "churn", data.generate(40, seed=2), "1", with_labels=True)
    return url


def test_retraining_reads_only_the_served_models_traffic(tmp_path: Path) -> None:
    url = two_models_log(tmp_path)

    traffic = sources.labelled_traffic(url, MODEL, 100, TYPES)

    assert len(traffic.frame) == 30
    assert traffic.frame[TYPES.target].tolist() == data.generate(30, seed=1)[TYPES.target].tolist()


def test_a_window_of_n_rows_holds_n_rows_of_the_model(tmp_path: Path) -> None:
    """The other model's rows are newer: filtering after the limit would leave none."""
    engine = connect(two_models_log(tmp_path))

    window = read_recent(engine, 20, model_name=MODEL)
    labelled = read_recent(engine, 20, labelled_only=True, model_name=MODEL)

    assert len(window) == len(labelled) == 20
    assert set(window["model_name"]) == set(labelled["model_name"]) == {MODEL}


def test_retraining_data_is_reference_plus_traffic() -> None:
    reference = data.generate(50, seed=1)
    traffic = sources.Traffic(data.generate(20, seed=2), "20 labelled predictions")

    loaded = sources.for_retraining(
        reference, traffic, TYPES, reason="drift on income", reference_of="3"
    )
    alone = sources.for_retraining(
        reference, traffic, TYPES, reason="concept drift", recent_only=True, reference_of="3"
    )

    assert len(loaded.frame) == 70
    assert loaded.source == "retrain:drift on income"
    # The version whose reference it started from, so its line can be followed back; none when
    # the reference was left out.
    assert loaded.lineage[TAG_REFERENCE_OF] == "3"
    assert TAG_REFERENCE_OF not in alone.lineage


def test_unknown_scenario_names_the_choices() -> None:
    with pytest.raises(DataValidationError, match="choose one of: baseline, covariate_shift"):
        sources.from_scenario("nope", 100, 1)


def test_flow_scenario_choices_match_the_generator() -> None:
    from pipelines.flows import ScenarioName

    assert get_args(ScenarioName) == data.SCENARIOS

"""Drift and performance computation on generated data (no services)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from monitoring.assets import default_settings
from monitoring.drift import compute_drift
from monitoring.performance import measure
from pipelines import data
from tests.models import TYPES

SETTINGS = default_settings()
REFERENCE = data.generate(5_000, "baseline", seed=42)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_baseline_windows_drift_no_feature(seed: int) -> None:
    result = compute_drift(REFERENCE, data.generate(200, "baseline", seed=seed), TYPES, SETTINGS)
    assert result.drifted_features == []
    assert not result.dataset_drifted


@pytest.mark.parametrize("scenario", ["unit_bug", "missing_values", "new_category"])
def test_a_data_bug_flags_exactly_its_features(scenario: str) -> None:
    traffic = data.generate(300, scenario, seed=7)
    result = compute_drift(REFERENCE, traffic, TYPES, SETTINGS)
    assert set(result.drifted_features) == data.DRIFTED_FEATURES[scenario]
    assert not result.dataset_drifted


def test_covariate_shift_is_dataset_drift_including_its_features() -> None:
    traffic = data.generate(300, "covariate_shift", seed=7)
    result = compute_drift(REFERENCE, traffic, TYPES, SETTINGS)
    assert data.DRIFTED_FEATURES["covariate_shift"] <= set(result.drifted_features)
    assert result.drifted_share >= SETTINGS.drift_share_threshold
    assert result.evidently_dataset_drifted
    assert result.dataset_drifted


def test_a_new_segment_is_dataset_drift_on_exactly_its_features() -> None:
    traffic = data.generate(300, "new_segment", seed=7)
    result = compute_drift(REFERENCE, traffic, TYPES, SETTINGS)
    assert set(result.drifted_features) == data.DRIFTED_FEATURES["new_segment"]
    assert result.dataset_drifted


def test_missing_values_evidently_cannot_see_still_make_dataset_drift() -> None:
    traffic = data.generate(300, seed=7)
    emptied = ["age", "annual_income", "loan_amount", "credit_score"]
    traffic.loc[::2, emptied] = None
    result = compute_drift(REFERENCE, traffic, TYPES, SETTINGS)
    assert not result.evidently_dataset_drifted
    assert set(result.drifted_features) == set(emptied)
    assert result.dataset_drifted


def test_concept_drift_is_invisible_in_the_features() -> None:
    traffic = data.generate(300, "concept_drift", seed=7)
    assert compute_drift(REFERENCE, traffic, TYPES, SETTINGS).drifted_features == []


def test_scores_are_distances_compared_with_the_configured_thresholds() -> None:
    result = compute_drift(REFERENCE, data.generate(300, "unit_bug", seed=7), TYPES, SETTINGS)
    income = next(f for f in result.features if f.feature == "annual_income")
    purpose = next(f for f in result.features if f.feature == "loan_purpose")
    assert (income.method, income.threshold) == ("wasserstein", SETTINGS.drift_numeric_threshold)
    assert income.score > income.threshold
    assert (purpose.method, purpose.threshold) == (
        "jensenshannon",
        SETTINGS.drift_categorical_threshold,
    )
    assert 0 <= purpose.score < purpose.threshold


def test_a_feature_absent_from_traffic_is_flagged_as_missing() -> None:
    traffic = data.generate(300, seed=7).drop(columns=["credit_score"])
    result = compute_drift(REFERENCE, traffic, TYPES, SETTINGS)
    credit = next(f for f in result.features if f.feature == "credit_score")
    assert math.isnan(credit.score)
    assert credit.missing_share == 1.0
    assert credit.drifted
    assert result.drifted_features == ["credit_score"]


def test_unparseable_numbers_count_as_missing_values() -> None:
    traffic = data.generate(300, seed=7)
    traffic["age"] = traffic["age"].astype(object)
    traffic.loc[:149, "age"] = "forty"
    age = next(
        f for f in compute_drift(REFERENCE, traffic, TYPES, SETTINGS).features if f.feature == "age"
    )
    assert age.missing_share == 0.5
    assert age.missing_increased


def test_performance_waits_for_enough_labels() -> None:
    labelled = pd.DataFrame({"label": [0, 1] * 20, "prediction": [0, 1] * 20, "probability": 0.5})
    performance = measure(labelled, min_labels=100)
    assert performance.labelled_rows == 40
    assert performance.accuracy is None and performance.roc_auc is None


def test_performance_measures_accuracy_and_auc() -> None:
    labelled = pd.DataFrame(
        {
            "label": [0, 0, 1, 1] * 30,
            "prediction": [0, 1, 1, 1] * 30,
            "probability": [0.1, 0.6, 0.7, 0.9] * 30,
        }
    )
    performance = measure(labelled, min_labels=100)
    assert performance.accuracy == pytest.approx(0.75)
    assert performance.roc_auc == pytest.approx(1.0)


def test_auc_needs_both_outcomes() -> None:
    labelled = pd.DataFrame({"label": [0] * 120, "prediction": [0] * 120, "probability": 0.2})
    performance = measure(labelled, min_labels=100)
    assert performance.accuracy == 1.0
    assert performance.roc_auc is None

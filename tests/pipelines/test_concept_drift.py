"""The ``concept_drift`` scenarios change the world, not the applicants (lab 08, one per variant):
the inputs are the baseline's, row for row, so no feature drifts; the old champion's ranking
falls under the gate's floor; a refit on a few hundred outcomes since the change brings it back.
No services: plain scikit-learn and the drift monitor's own computation."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.drift import compute_drift
from pipelines import data, sources, training
from platform_core.settings import Settings

TYPES = sources.generated_types()
SETTINGS = Settings()
WORLDS = ("concept_drift", "concept_drift_rates", "concept_drift_age")
FEATURES = list(data.FEATURE_NAMES)


def _auc(model, frame: pd.DataFrame) -> float:
    return float(roc_auc_score(frame[data.TARGET], model.predict_proba(frame[FEATURES])[:, 1]))


@pytest.fixture(scope="module")
def champion():
    """The first champion: fitted on the world before the change, as `mlops-lab train` would."""
    old = data.generate(6_000, "baseline", seed=42)
    parts = training.split(old, TYPES, seed=42)
    model = training.build_pipeline(TYPES, 42).fit(parts.X_train, parts.y_train)
    return model, training.reference_sample(old, SETTINGS.reference_rows, 42)


@pytest.mark.parametrize("world", WORLDS)
def test_the_applicants_are_the_baselines(world: str) -> None:
    changed, before = data.generate(500, world, seed=3), data.generate(500, "baseline", seed=3)

    pd.testing.assert_frame_equal(changed[FEATURES], before[FEATURES])
    assert not changed[data.TARGET].equals(before[data.TARGET])


@pytest.mark.parametrize("world", WORLDS)
def test_no_feature_drifts(champion, world: str) -> None:
    _, reference = champion

    result = compute_drift(reference, data.generate(300, world, seed=7), TYPES, SETTINGS)

    assert result.drifted_features == []
    assert not result.dataset_drifted


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("world", WORLDS)
def test_the_old_champion_falls_under_the_floor_and_a_recent_refit_recovers(
    champion, world: str, seed: int
) -> None:
    """The reference fix of lab 08: a retrain on the 600 outcomes since the change alone."""
    model, _ = champion
    new = data.generate(1_800, world, seed=seed)
    recent, later = new.iloc[:600], new.iloc[600:]
    parts = training.split(recent, TYPES, seed=42)
    refit = training.build_pipeline(TYPES, 42).fit(parts.X_train, parts.y_train)

    assert _auc(model, later) < SETTINGS.gate_min_auc - 0.05
    assert _auc(refit, later) >= SETTINGS.gate_min_auc


def _default_rate(frame: pd.DataFrame, rows: pd.Series) -> float:
    return float(frame.loc[rows, data.TARGET].mean())


def test_a_rate_rise_turns_round_the_effect_of_a_mortgage_and_a_long_term() -> None:
    before = data.generate(20_000, "baseline", seed=5)
    after = data.generate(20_000, "concept_drift_rates", seed=5)
    mortgage = before["home_ownership"] == "MORTGAGE"  # the same applicants in both
    long_term = before["loan_term_months"] >= 48

    for frame, riskier in ((before, False), (after, True)):
        assert (_default_rate(frame, mortgage) > _default_rate(frame, ~mortgage)) == riskier
        assert (_default_rate(frame, long_term) > _default_rate(frame, ~long_term)) == riskier


def test_a_resumed_repayment_makes_a_step_in_risk_at_32() -> None:
    before = data.generate(20_000, "baseline", seed=5)
    after = data.generate(20_000, "concept_drift_age", seed=5)
    age = before["age"]
    just_under, just_over = age.between(29, 31), age.between(32, 34)

    step_before = _default_rate(before, just_under) - _default_rate(before, just_over)
    step_after = _default_rate(after, just_under) - _default_rate(after, just_over)

    assert step_before < 0.05 < 0.25 < step_after, (step_before, step_after)


@pytest.mark.parametrize("world", WORLDS)
def test_the_score_separates_far_less_after_the_change(world: str) -> None:
    def score_auc(frame: pd.DataFrame) -> float:
        return float(roc_auc_score(frame[data.TARGET], -frame["credit_score"]))

    before, after = data.generate(20_000, "baseline", seed=5), data.generate(20_000, world, seed=5)

    assert score_auc(before) > 0.7
    assert score_auc(after) < 0.6

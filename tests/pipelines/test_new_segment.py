"""The ``new_segment`` scenarios are real shifts that retraining fixes (lab 07, one per variant):
the world's risk mechanism is the same, but the old population never reached the region the new
applicants live in, and a model fitted there ranks them poorly. No services: plain scikit-learn
and the drift monitor's own computation."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.drift import compute_drift
from pipelines import data, sources, training
from platform_core.settings import Settings

TYPES = sources.generated_types()
SETTINGS = Settings()
# What a clear win is: an AUC gain ten times the gate's default margin.
CLEAR_MARGIN = 0.05
SEGMENTS = ("new_segment", "new_segment_young", "new_segment_retired")


def _auc(model, frame: pd.DataFrame) -> float:
    features = frame[list(data.FEATURE_NAMES)]
    return float(roc_auc_score(frame[data.TARGET], model.predict_proba(features)[:, 1]))


def _fit(frame: pd.DataFrame):
    return training.build_pipeline(TYPES, 42).fit(
        frame[list(data.FEATURE_NAMES)], frame[data.TARGET]
    )


@pytest.fixture(scope="module")
def champion():
    """The first champion: fitted on the old population, as `mlops-lab train` would."""
    old = data.generate(6_000, "baseline", seed=42)
    parts = training.split(old, TYPES, seed=42)
    model = training.build_pipeline(TYPES, 42).fit(parts.X_train, parts.y_train)
    return model, parts, training.reference_sample(old, SETTINGS.reference_rows, 42)


def test_the_old_champion_passes_the_gate_on_old_held_out_rows(champion) -> None:
    model, parts, _ = champion

    auc = training.evaluate(model, parts.X_test, parts.y_test)["auc"]

    assert auc >= SETTINGS.gate_min_auc


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("segment", SEGMENTS)
def test_a_refit_on_the_new_applicants_beats_the_old_champion_on_them(
    champion, segment: str, seed: int
) -> None:
    model, _, _ = champion
    new = data.generate(1_600, segment, seed=seed)
    learn, judge = new.iloc[:400], new.iloc[400:]  # a few hundred outcomes, as in lab 07

    old_auc, new_auc = _auc(model, judge), _auc(_fit(learn), judge)

    assert new_auc - old_auc >= CLEAR_MARGIN, (old_auc, new_auc)
    assert old_auc < SETTINGS.gate_min_auc  # the old model fails the new applicants


@pytest.mark.parametrize("segment", SEGMENTS)
def test_a_segment_is_dataset_drift_on_exactly_its_features(champion, segment: str) -> None:
    _, _, reference = champion

    result = compute_drift(reference, data.generate(300, segment, seed=7), TYPES, SETTINGS)

    assert set(result.drifted_features) == data.DRIFTED_FEATURES[segment]
    assert result.dataset_drifted


@pytest.mark.parametrize("segment", SEGMENTS)
def test_a_retrain_judged_on_mostly_old_rows_does_not_beat_the_old_champion(
    champion, segment: str
) -> None:
    """What the automatic retrain does (lab 07): the champion's reference sample plus the newest
    labelled traffic, a few hundred rows of the segment among older ones, judged on a random
    quarter of that mix, where the segment's gain does not show."""
    model, _, reference = champion
    traffic = pd.concat(
        [data.generate(1_200, "baseline", seed=11), data.generate(800, segment, seed=12)],
        ignore_index=True,
    )
    parts = training.split(pd.concat([reference, traffic], ignore_index=True), TYPES, seed=42)
    retrained = training.build_pipeline(TYPES, 42).fit(parts.X_train, parts.y_train)

    gain = (
        training.evaluate(retrained, parts.X_test, parts.y_test)["auc"]
        - training.evaluate(model, parts.X_test, parts.y_test)["auc"]
    )

    assert gain < SETTINGS.gate_margin_auc


def test_plain_covariate_shift_leaves_the_old_champion_near_optimal(champion) -> None:
    """The contrast lab 07 needs: without a new region, retraining buys (almost) nothing."""
    model, _, _ = champion
    new = data.generate(1_600, "covariate_shift", seed=1)
    learn, judge = new.iloc[:400], new.iloc[400:]

    assert _auc(_fit(learn), judge) - _auc(model, judge) < CLEAR_MARGIN


def test_the_old_population_never_reaches_the_new_regions() -> None:
    """The same world for everyone: each segment's risk applies only where no other scenario
    goes (terms over 60 months, applicants under 21 or over 75), so their outputs are what they
    always were."""
    for scenario in set(data.SCENARIOS) - set(SEGMENTS):
        frame = data.generate(2_000, scenario, seed=3)
        assert frame["loan_term_months"].max() <= 60
        assert frame["age"].between(21, 75).all()
    assert set(data.generate(500, "new_segment", seed=3)["loan_term_months"]) <= set(
        data.LONG_TERMS
    )
    assert data.generate(500, "new_segment_young", seed=3)["age"].between(18, 20).all()
    assert data.generate(500, "new_segment_retired", seed=3)["age"].between(76, 90).all()


@pytest.mark.parametrize(
    ("segment", "feature", "riskier"),
    [
        # Over 60 months, the longer a job has lasted, the safer; the score fades.
        ("new_segment", "employment_years", "low"),
        # Under 21, the more credit lines already open, the riskier.
        ("new_segment_young", "num_open_accounts", "high"),
        # Over 75, risk rises with age, where it falls for everyone younger.
        ("new_segment_retired", "age", "high"),
    ],
)
def test_each_segment_has_its_own_risk(segment: str, feature: str, riskier: str) -> None:
    frame = data.generate(20_000, segment, seed=5)
    high = frame[feature] > frame[feature].median()
    low = frame[feature] < frame[feature].median()
    rates = frame[data.TARGET][high].mean(), frame[data.TARGET][low].mean()

    assert (rates[0] > rates[1]) == (riskier == "high"), rates

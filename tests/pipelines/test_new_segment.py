"""The ``new_segment`` scenario is a real shift that retraining fixes (lab 07): the world's risk
mechanism is the same, but the old population never reached the region the new applicants live
in, and a model fitted there ranks them poorly. No services: plain scikit-learn."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines import data, sources, training
from platform_core.settings import Settings

TYPES = sources.generated_types()
# What a clear win is: an AUC gain ten times the gate's default margin.
CLEAR_MARGIN = 0.05


def _auc(model, frame: pd.DataFrame) -> float:
    features = frame[list(data.FEATURE_NAMES)]
    return float(roc_auc_score(frame[data.TARGET], model.predict_proba(features)[:, 1]))


@pytest.fixture(scope="module")
def champion():
    """The first champion: fitted on the old population, as `mlops-lab train` would."""
    old = data.generate(6_000, "baseline", seed=42)
    parts = training.split(old, TYPES, seed=42)
    model = training.build_pipeline(TYPES, 42).fit(parts.X_train, parts.y_train)
    return model, parts


def test_the_old_champion_passes_the_gate_on_old_held_out_rows(champion) -> None:
    model, parts = champion

    auc = training.evaluate(model, parts.X_test, parts.y_test)["auc"]

    assert auc >= Settings().gate_min_auc


@pytest.mark.parametrize("seed", [1, 2])
def test_a_refit_on_the_new_applicants_beats_the_old_champion_on_them(champion, seed) -> None:
    model, _ = champion
    new = data.generate(1_600, "new_segment", seed=seed)
    learn, judge = new.iloc[:400], new.iloc[400:]  # a few hundred outcomes, as in lab 07

    refit = training.build_pipeline(TYPES, 42).fit(
        learn[list(data.FEATURE_NAMES)], learn[data.TARGET]
    )

    old_auc, new_auc = _auc(model, judge), _auc(refit, judge)
    assert new_auc - old_auc >= CLEAR_MARGIN, (old_auc, new_auc)
    assert old_auc < Settings().gate_min_auc  # the old model fails the new applicants


def test_plain_covariate_shift_leaves_the_old_champion_near_optimal(champion) -> None:
    """The contrast lab 07 needs: without a new region, retraining buys (almost) nothing."""
    model, _ = champion
    new = data.generate(1_600, "covariate_shift", seed=1)
    learn, judge = new.iloc[:400], new.iloc[400:]

    refit = training.build_pipeline(TYPES, 42).fit(
        learn[list(data.FEATURE_NAMES)], learn[data.TARGET]
    )

    assert _auc(refit, judge) - _auc(model, judge) < CLEAR_MARGIN


def test_the_old_population_never_reaches_the_new_region() -> None:
    """The same world for everyone: the long-term risk applies only past 60 months, a term no
    other scenario generates, so their outputs are what they always were."""
    for scenario in set(data.SCENARIOS) - {"new_segment"}:
        assert data.generate(2_000, scenario, seed=3)["loan_term_months"].max() <= 60
    assert set(data.generate(500, "new_segment", seed=3)["loan_term_months"]) <= set(
        data.LONG_TERMS
    )

"""The numpy fast path scores exactly as the fitted scikit-learn pipeline, or is not used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pipelines import data, training
from platform_core.contract import prepare_features
from serving import fast_path
from serving.schema import records_from_frame
from tests.models import TYPES


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, pd.DataFrame]:
    frame = data.generate(2_000, "missing_values", seed=5)
    split = training.split(frame, TYPES, 5)
    return training.build_pipeline(TYPES, 5).fit(split.X_train, split.y_train), frame


@pytest.mark.parametrize("scenario", ["baseline", "missing_values", "new_category", "unit_bug"])
def test_the_fast_path_gives_the_pipelines_probabilities(fitted, scenario: str) -> None:
    model, reference = fitted
    scorer = fast_path.verified(model, TYPES, reference)
    assert scorer is not None
    records = records_from_frame(data.generate(500, scenario, seed=9), TYPES.names)
    frame = prepare_features(pd.DataFrame.from_records(records, columns=TYPES.names), TYPES)
    np.testing.assert_allclose(
        scorer.predict_proba(records), model.predict_proba(frame), rtol=1e-9, atol=1e-12
    )


# Unscaled raw features: the logistic regression need not converge, only be fitted.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_pipeline_it_does_not_reproduce_gets_no_fast_path(fitted) -> None:
    model, reference = fitted
    split = training.split(reference, TYPES, 5)
    forest = Pipeline(
        [("preprocess", model.steps[0][1]), ("model", RandomForestClassifier(n_estimators=3))]
    ).fit(split.X_train, split.y_train)
    complete = data.generate(500, "baseline", seed=6).dropna()
    passthrough = Pipeline(
        [
            ("preprocess", ColumnTransformer([("numeric", "passthrough", TYPES.numeric)])),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(prepare_features(complete, TYPES), complete[data.TARGET])
    assert fast_path.compile_pipeline(forest) is None
    assert fast_path.compile_pipeline(passthrough) is None
    assert fast_path.verified(forest, TYPES, reference) is None

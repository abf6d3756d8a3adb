"""Answers over HTTP are the model's answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import data
from platform_core import contract
from platform_core.contract import prepare_features
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform


@pytest.fixture(scope="module")
def in_process_v1(platform: Platform):
    uri = contract.model_uri(platform.settings, version=platform.v1)
    return contract.load_sklearn_model(uri)


def _rows(scenario: str, n: int, seed: int) -> pd.DataFrame:
    return data.generate(n, scenario, seed=seed)[list(TYPES.names)]


def test_predictions_equal_the_in_process_model(platform: Platform, http, in_process_v1) -> None:
    # Missing values and unseen categories included: serving must prepare them as training did.
    frame = pd.concat(
        [_rows("baseline", 30, 11), _rows("missing_values", 10, 12), _rows("new_category", 10, 13)],
        ignore_index=True,
    )
    response = http.post("/predict", json={"records": records_from_frame(frame, TYPES.names)})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = in_process_v1.predict_proba(prepare_features(frame, TYPES))[:, 1]
    assert body["model_version"] == platform.v1
    assert body["predictions"] == in_process_v1.predict(prepare_features(frame, TYPES)).tolist()
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-12)


def test_each_request_gets_its_own_request_id(http) -> None:
    record = records_from_frame(_rows("baseline", 1, 21), TYPES.names)
    ids = {http.post("/predict", json={"records": record}).json()["request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_null_feature_is_imputed_not_rejected(http) -> None:
    record = records_from_frame(_rows("baseline", 1, 22), TYPES.names)[0]
    record.update(employment_years=None, home_ownership=None)
    response = http.post("/predict", json={"records": [record]})
    assert response.status_code == 200, response.text

"""True labels land beside the predictions they belong to."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines import data
from platform_core.prediction_log import predictions
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, restart_serving


def _predict(http, n: int, seed: int) -> str:
    records = records_from_frame(data.generate(n, seed=seed), TYPES.names)
    response = http.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def test_feedback_stores_labels_beside_the_predictions(http, log_db) -> None:
    request_id = _predict(http, 2, seed=41)
    labels = [
        {"request_id": request_id, "record_index": 0, "label": 1},
        {"request_id": request_id, "record_index": 1, "label": 0},
    ]
    response = http.post("/feedback", json={"labels": labels})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "stored": 2, "unknown": []}
    query = (
        sa.select(predictions.c.record_index, predictions.c.label, predictions.c.labelled_at)
        .where(predictions.c.request_id == request_id)
        .order_by(predictions.c.record_index)
    )
    with log_db.connect() as conn:
        rows = conn.execute(query).all()
    assert [(row.record_index, row.label) for row in rows] == [(0, 1), (1, 0)]
    assert all(row.labelled_at is not None for row in rows)


def test_feedback_reports_labels_that_match_no_prediction(http) -> None:
    request_id = _predict(http, 1, seed=42)
    labels = [
        {"request_id": request_id, "label": 1},
        {"request_id": request_id, "record_index": 5, "label": 1},
        {"request_id": "never-issued", "label": 0},
    ]
    body = http.post("/feedback", json={"labels": labels}).json()
    assert body["stored"] == 1
    assert body["unknown"] == [
        {"request_id": request_id, "record_index": 5},
        {"request_id": "never-issued", "record_index": 0},
    ]


def test_feedback_is_stored_right_after_a_restart(platform: Platform, http, log_db) -> None:
    request_id = _predict(http, 2, seed=43)
    restart_serving(platform)
    # No prediction since the restart: the log has been written to only by the old process.
    labels = [{"request_id": request_id, "record_index": 1, "label": 1}]
    response = http.post("/feedback", json={"labels": labels})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1, "unknown": []}
    query = sa.select(predictions.c.label).where(
        predictions.c.request_id == request_id, predictions.c.record_index == 1
    )
    with log_db.connect() as conn:
        assert conn.execute(query).scalar_one() == 1

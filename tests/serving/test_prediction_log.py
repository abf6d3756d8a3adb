"""Every answered record reaches the prediction log, across a graceful restart too."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from mlops_lab.runtime.local.runtime import LocalRuntime
from pipelines import data
from platform_core.prediction_log import predictions
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, wait_until_serving


def _logged(log_db, request_ids: list[str]) -> list:
    query = sa.select(predictions).where(predictions.c.request_id.in_(request_ids))
    with log_db.connect() as conn:
        return conn.execute(query).all()


def test_a_record_is_logged_with_features_prediction_and_version(
    platform: Platform, http, log_db
) -> None:
    record = records_from_frame(data.generate(1, "missing_values", seed=81), TYPES.names)[0]
    body = http.post("/predict", json={"records": [record]}).json()
    # Feedback writes queued rows first, so this also waits for the row to land.
    http.post("/feedback", json={"labels": [{"request_id": body["request_id"], "label": 0}]})
    (row,) = _logged(log_db, [body["request_id"]])
    assert json.loads(row.features) == {
        k: (float(v) if isinstance(v, int) else v) for k, v in record.items()
    }
    assert row.prediction == body["predictions"][0]
    assert row.probability == body["probabilities"][0]
    assert row.model_version == platform.v1
    assert row.model_name == platform.settings.model_name
    assert row.created_at is not None


def test_graceful_restart_keeps_every_answered_record(platform: Platform, log_db) -> None:
    records = records_from_frame(data.generate(40, seed=82), TYPES.names)
    with httpx.Client(base_url=platform.url, timeout=30) as client:
        ids = [
            client.post("/predict", json={"records": [record]}).json()["request_id"]
            for record in records
        ]
    supervisor = LocalRuntime(platform.settings).supervisor
    supervisor.rpc.stopProcess("serving", True)
    try:
        assert len(_logged(log_db, ids)) == len(records)
    finally:
        supervisor.rpc.startProcess("serving", True)
        wait_until_serving(platform.settings, platform.v1, timeout_s=120)

"""Helpers for the monitoring tests: real models in MLflow, rows in the real prediction log.

Models are trained and registered with the pipeline's own functions (no Prefect needed), and
traffic is written straight into the prediction-log table: that table is the contract between
serving and the drift monitor, so the monitor can be tested before and without serving.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from mlops_lab.settings import Settings
from pipelines import contract, data
from serving.prediction_log import predictions
from tests.models import TYPES


def delete_reference(settings: Settings, run_id: str) -> None:
    """Lose the reference sample from the artifact store, as a wiped bucket would."""
    found = list((settings.paths.mlflow / "artifacts").glob(f"**/{run_id}/**/reference.parquet"))
    assert found, f"no reference artifact stored for run {run_id}"
    for path in found:
        path.unlink()


def _json_value(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def log_predictions(
    engine: sa.Engine,
    settings: Settings,
    frame: pd.DataFrame,
    version: str,
    model: Pipeline | None = None,
    with_labels: bool = False,
) -> None:
    """Append one logged prediction per row, as serving would (optionally with feedback labels)."""
    if model is not None:
        probability = model.predict_proba(contract.prepare_features(frame, TYPES))[:, 1]
    else:
        probability = [0.5] * len(frame)
    request_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    rows = []
    for index, (record, p) in enumerate(
        zip(frame[list(data.FEATURE_NAMES)].to_dict("records"), probability, strict=True)
    ):
        rows.append(
            {
                "request_id": request_id,
                "record_index": index,
                "created_at": now,
                "model_name": settings.model_name,
                "model_version": version,
                "features": json.dumps({k: _json_value(v) for k, v in record.items()}),
                "prediction": int(p >= 0.5),
                "probability": float(p),
                "label": int(frame[data.TARGET].iloc[index]) if with_labels else None,
                "labelled_at": now if with_labels else None,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(predictions), rows)


def log_lines(settings: Settings, service: str) -> str:
    path: Path = settings.paths.log_file(service)
    return path.read_text(errors="replace") if path.exists() else ""


def notification(
    group_key: str,
    summary: str,
    alertname: str = "DataDriftDetected",
    status: str = "firing",
    fingerprint: str = "4f2b1c9d0e7a6b35",
    starts_at: str = "2025-01-01T10:00:00Z",
) -> dict:
    """An Alertmanager webhook payload (version 4) with one alert, as Alertmanager sends it.

    Alerts other than the retrain ones carry no ``action`` label and go to the ``log`` receiver.
    """
    retrain = alertname in {"DataDriftDetected", "ModelPerformanceDegraded"}
    labels = {"alertname": alertname, "severity": "warning"}
    if retrain:
        labels["action"] = "retrain"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "retrain" if retrain else "log",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }

"""Labelled predictions written straight into a prediction log, as serving and feedback would."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from pipelines import data
from serving.prediction_log import connect, predictions


def log_predictions(url: str, rows: pd.DataFrame, labelled: bool) -> None:
    engine = connect(url)
    now = datetime.now(UTC)
    records = rows.to_dict(orient="records")
    with engine.begin() as conn:
        conn.execute(
            predictions.insert(),
            [
                {
                    "request_id": f"r{i}",
                    "record_index": 0,
                    "created_at": now,
                    "model_name": "loan-default",
                    "model_version": "1",
                    "features": json.dumps({k: record[k] for k in data.FEATURE_NAMES}),
                    "prediction": 0,
                    "probability": 0.1,
                    "label": int(record[data.TARGET]) if labelled else None,
                    "labelled_at": now if labelled else None,
                }
                for i, record in enumerate(records)
            ],
        )
    engine.dispose()

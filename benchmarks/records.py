"""The records every serving benchmark sends: generated loan applications without missing values.

Complete rows, because ``mlflow models serve`` enforces the signature's column types and refuses
a missing number, while our serving imputes it: both servers must answer the same requests.
"""

from __future__ import annotations

from typing import Any

from pipelines import data
from serving.schema import records_from_frame


def complete_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    frame = data.generate(count * 2, "baseline", seed=seed)
    frame = frame[list(data.FEATURE_NAMES)].dropna().head(count)
    return records_from_frame(frame, data.FEATURE_NAMES)

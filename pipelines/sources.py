"""Where training data comes from: a generated scenario, a learner's CSV, or recent traffic.

Each loader returns the rows together with their feature types and the ``data_source`` lineage
tag, so the rest of the flow does not care where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mlops_lab.core.contract import FeatureTypes
from mlops_lab.core.prediction_log import connect, read_recent
from pipelines import data
from pipelines.csv_data import read_training_csv
from pipelines.validation import DataValidationError

# MLflow caps tag values; a retrain reason is free text from an alert.
_MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class TrainingData:
    frame: pd.DataFrame
    types: FeatureTypes
    # The ``data_source`` lineage tag: "scenario:baseline", "file:loans.csv", "retrain:<reason>".
    source: str
    # Where the rows came from, for people: a path, "scenario baseline", "retraining data".
    origin: str
    # One line for logs and the CLI: what was loaded.
    summary: str
    # The file the rows were read from (the run's dataset source), if they came from one.
    uri: str | None = None


def generated_types() -> FeatureTypes:
    return FeatureTypes(kinds={f.name: f.kind for f in data.FEATURES}, target=data.TARGET)


def from_scenario(scenario: str, rows: int, seed: int) -> TrainingData:
    if scenario not in data.SCENARIOS:
        raise DataValidationError(
            f"scenario {scenario!r}",
            [f"unknown scenario; choose one of: {', '.join(data.SCENARIOS)}"],
        )
    frame = data.generate(rows, scenario, seed)
    return TrainingData(
        frame=frame,
        types=generated_types(),
        source=f"scenario:{scenario}",
        origin=f"scenario {scenario}",
        summary=f"generated {rows:,} loan applications (scenario {scenario}, seed {seed})",
    )


def from_csv(path: Path, target: str) -> TrainingData:
    frame, types = read_training_csv(path, target)
    numeric, categorical = len(types.numeric), len(types.categorical)
    return TrainingData(
        frame=frame,
        types=types,
        source=f"file:{path.name}",
        origin=str(path),
        summary=(
            f"read {len(frame):,} rows from {path}: {numeric} numeric and {categorical} "
            f"categorical features, target {target!r}"
        ),
        uri=str(path.resolve()),
    )


def load(
    scenario: str, data_path: str | None, target: str | None, rows: int, seed: int
) -> TrainingData:
    """The ``train`` flow's data: the CSV at ``data_path`` if given, else a generated scenario."""
    if data_path is None:
        return from_scenario(scenario, rows, seed)
    if not target:
        raise DataValidationError(
            data_path, ["training on a CSV needs its label column (--target)"]
        )
    return from_csv(Path(data_path).expanduser(), target)


@dataclass(frozen=True)
class Traffic:
    frame: pd.DataFrame
    # Why there is none, when there is none: said in the logs so an empty retrain is explained.
    note: str


def labelled_traffic(
    prediction_log_url: str, model_name: str, rows: int, types: FeatureTypes
) -> Traffic:
    """The newest labelled predictions of ``model_name`` as training rows (features plus target).

    Only that model's: the log is shared, and another model's rows have other features.
    """
    url = make_url(prediction_log_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return Traffic(_empty(types), f"no prediction log yet at {url.database}")
    try:
        engine = connect(prediction_log_url)
        try:
            recent = read_recent(engine, rows, labelled_only=True, model_name=model_name)
        finally:
            engine.dispose()
    except sa.exc.SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        return Traffic(_empty(types), f"the prediction log could not be read ({reason})")
    if recent.empty:
        return Traffic(
            _empty(types), f"the prediction log has no labelled predictions of {model_name} yet"
        )
    frame = recent.reindex(columns=types.names)
    frame[types.target] = recent["label"].astype(int)
    return Traffic(frame.reset_index(drop=True), f"{len(frame):,} labelled predictions")


def for_retraining(
    reference: pd.DataFrame,
    traffic: Traffic,
    types: FeatureTypes,
    reason: str,
    recent_only: bool = False,
) -> TrainingData:
    """The champion's reference sample plus recent labelled traffic, features in model order.

    ``recent_only`` leaves the reference out: when the relationship between features and outcome
    changed (concept drift), the old rows teach the old relationship and hold the new model back.
    """
    columns = [*types.names, types.target]
    source = f"retrain:{reason[:_MAX_REASON_CHARS]}"
    if recent_only:
        if traffic.frame.empty:
            raise DataValidationError(
                "recent labelled traffic", [f"nothing to retrain on: {traffic.note}"]
            )
        return TrainingData(
            frame=traffic.frame.reindex(columns=columns).reset_index(drop=True),
            types=types,
            source=source,
            origin="recent labelled traffic",
            summary=f"{traffic.note} only (the champion's reference left out)",
        )
    parts = [reference.reindex(columns=columns)]
    if not traffic.frame.empty:
        parts.append(traffic.frame.reindex(columns=columns))
    frame = pd.concat(parts, ignore_index=True)
    return TrainingData(
        frame=frame,
        types=types,
        source=source,
        origin="retraining data",
        summary=(
            f"{len(reference):,} reference rows of the champion plus {traffic.note}"
            if not traffic.frame.empty
            else f"{len(reference):,} reference rows of the champion only: {traffic.note}"
        ),
    )


def _empty(types: FeatureTypes) -> pd.DataFrame:
    return pd.DataFrame(columns=[*types.names, types.target])

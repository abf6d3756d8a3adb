"""Where training data comes from: a generated scenario, a learner's CSV, or recent traffic.

Each loader returns the rows together with their feature types and the ``data_source`` lineage
tag, so the rest of the flow does not care where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pipelines import data
from pipelines.csv_data import read_training_csv
from pipelines.lineage import (
    TAG_EVALUATED_ON,
    TAG_REFERENCE_OF,
    TAG_TRAFFIC_ROWS,
    TAG_TRAFFIC_SINCE,
    TAG_TRAFFIC_UNTIL,
    EvaluateOn,
)
from pipelines.validation import DataValidationError
from platform_core.contract import FeatureTypes
from platform_core.prediction_log import connect, read_recent

# MLflow caps tag values; a retrain reason is free text from an alert.
_MAX_REASON_CHARS = 200

RECENT_HOLDOUT_SHARE = 0.25
# Fewer recent rows than this give an AUC too noisy to decide a promotion on.
MIN_RECENT_HOLDOUT = 40


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
    # Rows to evaluate on instead of a random split of ``frame`` (never trained on).
    holdout: pd.DataFrame | None = None
    # Extra lineage tags for the version (what traffic it learned from, what it was judged on).
    lineage: dict[str, str] = field(default_factory=dict)


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
    # When each row was logged (UTC), aligned with ``frame``; oldest first.
    logged_at: pd.Series = field(default_factory=lambda: pd.Series(dtype="datetime64[ns, UTC]"))


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
    except SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        return Traffic(_empty(types), f"the prediction log could not be read ({reason})")
    if recent.empty:
        return Traffic(
            _empty(types), f"the prediction log has no labelled predictions of {model_name} yet"
        )
    frame = recent.reindex(columns=types.names)
    frame[types.target] = recent["label"].astype(int)
    # SQLite hands back naive datetimes: the log writes UTC.
    logged_at = pd.to_datetime(recent["created_at"], utc=True).reset_index(drop=True)
    return Traffic(frame.reset_index(drop=True), f"{len(frame):,} labelled predictions", logged_at)


def for_retraining(
    reference: pd.DataFrame,
    traffic: Traffic,
    types: FeatureTypes,
    reason: str,
    recent_only: bool = False,
    evaluate_on: EvaluateOn = "holdout",
    reference_of: str | None = None,
) -> TrainingData:
    """The champion's reference sample (of version ``reference_of``) plus recent labelled
    traffic, features in model order.

    ``recent_only`` leaves the reference out: when the relationship between features and outcome
    changed (concept drift), the old rows teach the old relationship and hold the new model back.
    ``evaluate_on="recent"`` keeps the newest labelled traffic out of training and judges the
    challenger (and the champion, in the gate) on it: after a real population shift, a random
    split of mostly old rows says how a model does on the applicants who no longer come.
    """
    columns = [*types.names, types.target]
    source = f"retrain:{reason[:_MAX_REASON_CHARS]}"
    learn, holdout = _split_recent(traffic, types, evaluate_on)
    lineage = {TAG_EVALUATED_ON: evaluate_on, **_window(learn)}
    judged = f"; judged on the newest {len(holdout.frame):,}, held out" if holdout else ""
    if recent_only:
        if learn.frame.empty:
            raise DataValidationError(
                "recent labelled traffic", [f"nothing to retrain on: {traffic.note}"]
            )
        return TrainingData(
            frame=learn.frame.reindex(columns=columns).reset_index(drop=True),
            types=types,
            source=source,
            origin="recent labelled traffic",
            summary=f"{learn.note} only (the champion's reference left out){judged}",
            holdout=holdout.frame.reindex(columns=columns) if holdout else None,
            lineage=lineage,
        )
    if reference_of is not None:
        lineage[TAG_REFERENCE_OF] = reference_of
    parts = [reference.reindex(columns=columns)]
    if not learn.frame.empty:
        parts.append(learn.frame.reindex(columns=columns))
    frame = pd.concat(parts, ignore_index=True)
    return TrainingData(
        frame=frame,
        types=types,
        source=source,
        origin="retraining data",
        summary=(
            f"{len(reference):,} reference rows of the champion plus {learn.note}{judged}"
            if not learn.frame.empty
            else f"{len(reference):,} reference rows of the champion only: {traffic.note}"
        ),
        holdout=holdout.frame.reindex(columns=columns) if holdout else None,
        lineage=lineage,
    )


def _split_recent(
    traffic: Traffic, types: FeatureTypes, evaluate_on: EvaluateOn
) -> tuple[Traffic, Traffic | None]:
    """The traffic to learn from and, for ``recent``, the newest rows to judge on (by time, not
    at random: a random split would let the model learn from the minutes it is judged on)."""
    if evaluate_on == "holdout":
        return traffic, None
    if evaluate_on != "recent":
        raise ValueError(f"evaluate_on must be 'holdout' or 'recent', got {evaluate_on!r}.")
    n_holdout = round(len(traffic.frame) * RECENT_HOLDOUT_SHARE)
    if n_holdout < MIN_RECENT_HOLDOUT:
        raise DataValidationError(
            "recent labelled traffic",
            [
                f"judging on recent traffic holds out its newest {RECENT_HOLDOUT_SHARE:.0%}, "
                f"at least {MIN_RECENT_HOLDOUT} rows, but {traffic.note or 'there is none'}: "
                "wait for more outcomes, ask for more (--traffic-rows), or evaluate on the "
                "holdout"
            ],
        )
    cut = len(traffic.frame) - n_holdout
    learn = Traffic(
        traffic.frame.iloc[:cut].reset_index(drop=True),
        f"{cut:,} older labelled predictions",
        traffic.logged_at.iloc[:cut].reset_index(drop=True),
    )
    holdout = Traffic(
        traffic.frame.iloc[cut:].reset_index(drop=True),
        f"{n_holdout:,} newest labelled predictions",
        traffic.logged_at.iloc[cut:].reset_index(drop=True),
    )
    return learn, holdout


def _window(traffic: Traffic) -> dict[str, str]:
    """Lineage tags: how many traffic rows a version learned from, logged between when."""
    tags = {TAG_TRAFFIC_ROWS: str(len(traffic.frame))}
    if len(traffic.logged_at):
        tags[TAG_TRAFFIC_SINCE] = traffic.logged_at.min().isoformat()
        tags[TAG_TRAFFIC_UNTIL] = traffic.logged_at.max().isoformat()
    return tags


def _empty(types: FeatureTypes) -> pd.DataFrame:
    return pd.DataFrame(columns=[*types.names, types.target])

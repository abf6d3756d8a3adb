"""Drift between the champion's reference sample and a window of live traffic, with Evidently.

A feature is flagged when Evidently finds its value distribution drifted, or when its share of
missing values rose by more than ``drift_missing_increase``: Evidently drops missing values
before comparing distributions, so a form that suddenly leaves a field empty would otherwise go
unnoticed. The dataset has drifted when the share of flagged features reaches
``drift_share_threshold``.

The methods are pinned rather than left to Evidently's size-based choice, so a score always
means the same thing on a dashboard: both are distances (0 = identical, larger = more different)
and Evidently flags drift at ``score >= threshold``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import MissingValueCount, ValueDrift

from mlops_lab.core.contract import FeatureTypes, prepare_features
from mlops_lab.core.settings import Settings

NUMERIC_METHOD = "wasserstein"  # Wasserstein distance divided by the reference's std
CATEGORICAL_METHOD = "jensenshannon"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    method: str
    threshold: float
    # NaN when the feature has no values at all in one of the two samples.
    score: float
    distribution_drifted: bool
    missing_share: float
    reference_missing_share: float
    missing_increased: bool

    @property
    def drifted(self) -> bool:
        return self.distribution_drifted or self.missing_increased

    @property
    def reason(self) -> str:
        reasons = []
        if self.distribution_drifted:
            reasons.append(f"{self.method} {self.score:.3f} >= {self.threshold}")
        if self.missing_increased:
            reasons.append(
                f"missing {self.reference_missing_share:.0%} -> {self.missing_share:.0%}"
            )
        return "; ".join(reasons)


@dataclass(frozen=True)
class DriftResult:
    features: tuple[FeatureDrift, ...]
    window_rows: int
    reference_rows: int
    share_threshold: float

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drifted(self) -> bool:
        return bool(self.features) and self.drifted_share >= self.share_threshold


def model_input(frame: pd.DataFrame, types: FeatureTypes) -> pd.DataFrame:
    """The features as the model sees them; absent columns and unparseable numbers become missing.

    Serving validates input, so neither should happen; if it does, the monitor must report it
    as missing data instead of failing the whole check.
    """
    frame = frame.reindex(columns=types.names)
    for name in types.numeric:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return prepare_features(frame, types)


def _method(types: FeatureTypes, feature: str, settings: Settings) -> tuple[str, float]:
    if types.kinds[feature] == "numeric":
        return NUMERIC_METHOD, settings.drift_numeric_threshold
    return CATEGORICAL_METHOD, settings.drift_categorical_threshold


def build_report(types: FeatureTypes, comparable: list[str], settings: Settings) -> Report:
    """Evidently's per-feature drift for the comparable features, missing values for all."""
    metrics: list[ValueDrift | MissingValueCount] = []
    for name in comparable:
        method, threshold = _method(types, name, settings)
        metrics.append(ValueDrift(column=name, method=method, threshold=threshold))
    metrics += [MissingValueCount(column=name) for name in types.names]
    return Report(metrics)


def run_report(
    reference: pd.DataFrame, current: pd.DataFrame, types: FeatureTypes, settings: Settings
) -> tuple[DriftResult, Snapshot]:
    """Compare ``current`` (the traffic window) with ``reference`` (the champion's sample)."""
    reference = model_input(reference, types)
    current = model_input(current, types)
    # Evidently refuses a column that is empty in either sample; such a feature is reported
    # through its missing share alone.
    comparable = [
        name
        for name in types.names
        if current[name].notna().any() and reference[name].notna().any()
    ]
    definition = DataDefinition(
        numerical_columns=types.numeric, categorical_columns=types.categorical
    )
    with warnings.catch_warnings():
        # Evidently divides by zero while profiling an all-missing column; the NaN is expected.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = build_report(types, comparable, settings).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    scores = _scores(snapshot)
    features = []
    for name in types.names:
        method, threshold = _method(types, name, settings)
        score = scores.get(name, math.nan)
        missing = float(current[name].isna().mean()) if len(current) else 0.0
        reference_missing = float(reference[name].isna().mean()) if len(reference) else 0.0
        features.append(
            FeatureDrift(
                feature=name,
                kind=types.kinds[name],
                method=method,
                threshold=threshold,
                score=score,
                distribution_drifted=not math.isnan(score) and score >= threshold,
                missing_share=missing,
                reference_missing_share=reference_missing,
                missing_increased=missing - reference_missing > settings.drift_missing_increase,
            )
        )
    result = DriftResult(
        features=tuple(features),
        window_rows=len(current),
        reference_rows=len(reference),
        share_threshold=settings.drift_share_threshold,
    )
    return result, snapshot


def compute_drift(
    reference: pd.DataFrame, current: pd.DataFrame, types: FeatureTypes, settings: Settings
) -> DriftResult:
    return run_report(reference, current, types, settings)[0]


def _scores(snapshot: Snapshot) -> dict[str, float]:
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            scores[config["column"]] = float(metric["value"])
    return scores


def save_html(snapshot: Snapshot, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path

"""Drift between the champion's reference sample and a window of live traffic, with Evidently.

Evidently's ``DataDriftPreset`` does the comparison: one ``ValueDrift`` per feature (score and
verdict) and ``DriftedColumnsCount``, whose test is its dataset verdict (drifted when the share of
drifted columns reaches ``drift_share``). Its methods are pinned rather than left to Evidently's
size-based choice, so a score always means the same thing on a dashboard: both are distances
(0 = identical, larger = more different) and Evidently flags drift at ``score >= threshold``.

One rule is ours. Evidently drops missing values before comparing distributions, so a form that
suddenly leaves a field empty would go unnoticed (and a feature empty on one side cannot be
compared at all: it is left out of the preset). So a feature is flagged when Evidently finds its
distribution drifted *or* its share of missing values rose by more than
``drift_missing_increase``, and the dataset has drifted when Evidently's verdict says so *or*
the share of flagged features, counted over all features, reaches ``drift_share_threshold``.
Both use the same threshold; ours can only add to Evidently's (a rise in missing values is
drift the preset cannot see), never veto it.

Evidently's report draws a plotly figure for every metric as it computes it (about 85 % of a
check's CPU), which only its HTML report shows. So the monitor's checks, which export numbers,
call the same Evidently statistical tests (its stattest registry, as ``ValueDrift`` does: infinite
and missing values dropped first) without the report; the full report runs when one is asked for
(``mlops-lab drift check --html``). A test holds both paths to the same verdicts.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import CountValue, MetricResult, SingleValue, TestStatus
from evidently.core.report import Snapshot
from evidently.metrics import DriftedColumnsCount, MissingValueCount, ValueDrift
from evidently.presets import DataDriftPreset

from platform_core.contract import FeatureTypes, prepare_features
from platform_core.settings import Settings

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
    # Evidently's own dataset verdict, on the features it could compare.
    evidently_dataset_drifted: bool = False

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drifted(self) -> bool:
        ours = bool(self.features) and self.drifted_share >= self.share_threshold
        return self.evidently_dataset_drifted or ours


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
    """Evidently's drift preset over the comparable features; missing values for all of them
    (shown in the HTML report, and the input of our missing-share rule)."""
    preset = DataDriftPreset(
        columns=comparable,
        num_method=NUMERIC_METHOD,
        num_threshold=settings.drift_numeric_threshold,
        cat_method=CATEGORICAL_METHOD,
        cat_threshold=settings.drift_categorical_threshold,
        drift_share=settings.drift_share_threshold,
    )
    missing = [MissingValueCount(column=name) for name in types.names]
    # Tests carry Evidently's verdicts: per feature, and for the dataset. With no comparable
    # feature there is nothing for the preset to compare (it would count drift over no columns).
    return Report([preset, *missing] if comparable else missing, include_tests=True)


def _failed(result: MetricResult) -> bool:
    return any(test.status == TestStatus.FAIL for test in result.tests)


def _verdicts(report: Report, snapshot: Snapshot) -> tuple[dict[str, tuple[float, bool]], bool]:
    """Per feature (score, drifted), and the dataset verdict, from the preset's own metrics."""
    preset = next(item for item in report.items() if isinstance(item, DataDriftPreset))
    features: dict[str, tuple[float, bool]] = {}
    dataset_drifted = False
    for metric in preset.metrics(snapshot.context):
        result = snapshot.context.get_metric_result(metric)
        if isinstance(metric, ValueDrift):
            # Evidently types every metric's result as the base class; ValueDrift's is a value.
            value = cast(SingleValue, result).value
            features[metric.column] = (float(value), _failed(result))
        elif isinstance(metric, DriftedColumnsCount):
            dataset_drifted = _failed(result)
    return features, dataset_drifted


def _stattests(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    types: FeatureTypes,
    comparable: list[str],
    settings: Settings,
) -> tuple[dict[str, tuple[float, bool]], bool]:
    """Per feature (score, drifted), and the dataset verdict, from Evidently's statistical tests
    called as its ``ValueDrift`` and ``DriftedColumnsCount`` call them, without drawing a
    report."""
    import numpy as np
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    verdicts: dict[str, tuple[float, bool]] = {}
    for name in comparable:
        method, threshold = _method(types, name, settings)
        kind = ColumnType.Numerical if types.kinds[name] == "numeric" else ColumnType.Categorical
        ref = reference[name].replace([-np.inf, np.inf], np.nan).dropna()
        cur = current[name].replace([-np.inf, np.inf], np.nan).dropna()
        result = get_stattest(ref, cur, kind, method)(ref, cur, kind, threshold)
        verdicts[name] = (float(result.drift_score), bool(result.drifted))
    drifted = sum(flag for _, flag in verdicts.values())
    # As the preset's DriftedColumnsCount test: a share (not a count), drifted from the threshold.
    dataset = bool(comparable) and drifted / len(comparable) >= settings.drift_share_threshold
    return verdicts, dataset


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    types: FeatureTypes,
    settings: Settings,
    with_report: bool = True,
) -> tuple[DriftResult, Snapshot | None]:
    """Compare ``current`` (the traffic window) with ``reference`` (the champion's sample); with
    ``with_report``, through Evidently's report, whose snapshot (for its HTML) comes back too."""
    reference = model_input(reference, types)
    current = model_input(current, types)
    # Evidently refuses a column that is empty in either sample; such a feature is reported
    # through its missing share alone.
    comparable = [
        name
        for name in types.names
        if current[name].notna().any() and reference[name].notna().any()
    ]
    snapshot = None
    if with_report:
        definition = DataDefinition(
            numerical_columns=types.numeric, categorical_columns=types.categorical
        )
        report = build_report(types, comparable, settings)
        with warnings.catch_warnings():
            # Evidently divides by zero while profiling an all-missing column; the NaN is
            # expected.
            warnings.simplefilter("ignore", RuntimeWarning)
            snapshot = report.run(
                Dataset.from_pandas(current, data_definition=definition),
                Dataset.from_pandas(reference, data_definition=definition),
            )
        verdicts, evidently_dataset_drifted = (
            _verdicts(report, snapshot) if comparable else ({}, False)
        )
    else:
        verdicts, evidently_dataset_drifted = _stattests(
            reference, current, types, comparable, settings
        )
    features = []
    for name in types.names:
        method, threshold = _method(types, name, settings)
        score, distribution_drifted = verdicts.get(name, (math.nan, False))
        missing = (
            _missing_share(snapshot, name)
            if snapshot is not None
            else (float(current[name].isna().mean()) if len(current) else 0.0)
        )
        reference_missing = float(reference[name].isna().mean()) if len(reference) else 0.0
        features.append(
            FeatureDrift(
                feature=name,
                kind=types.kinds[name],
                method=method,
                threshold=threshold,
                score=score,
                distribution_drifted=distribution_drifted,
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
        evidently_dataset_drifted=evidently_dataset_drifted,
    )
    return result, snapshot


def _missing_share(snapshot: Snapshot, name: str) -> float:
    """Share of missing values in the traffic window, as Evidently counted it."""
    result = snapshot.context.get_metric_result(MissingValueCount(column=name))
    # Typed as the base class by Evidently; MissingValueCount's result is a count and a share.
    share = float(cast(CountValue, result).share.value)
    return 0.0 if math.isnan(share) else share


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    types: FeatureTypes,
    settings: Settings,
    with_report: bool = False,
) -> DriftResult:
    return run_report(reference, current, types, settings, with_report)[0]


def save_html(snapshot: Snapshot, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path

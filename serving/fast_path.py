"""A numpy scorer equivalent to the platform's fitted pipeline, for the per-request path.

Scoring one record through scikit-learn costs about 4 ms, almost all of it per-call overhead:
building a one-row DataFrame, and the ColumnTransformer's input validation and pandas indexing
for every step. The fitted parameters are small, so the same arithmetic in numpy takes tens of
microseconds. :func:`compile_pipeline` reads them from a fitted
``Pipeline([ColumnTransformer(imputer/scaler/one-hot steps), LogisticRegression])`` (what
pipelines/training.py builds) and returns ``None`` for anything else; :func:`verified` keeps the
scorer only when it gives the same probabilities as ``predict_proba`` on real rows, so an
unexpected pipeline falls back to scikit-learn instead of answering differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from platform_core.contract import FeatureTypes, prepare_features
from serving.schema import records_from_frame

# Reference rows the fast scorer must reproduce before it is used.
_CHECK_ROWS = 200

# One feature's contribution: record value -> its columns of the model's input.
Encode = Callable[[Any], list[float]]


@dataclass(frozen=True)
class FastScorer:
    """Probabilities of the positive class (``classes_[1]``), one per record."""

    encoders: tuple[tuple[str, Encode], ...]
    coef: np.ndarray
    intercept: float

    def positive_probability(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        rows = []
        for record in records:
            row: list[float] = []
            for name, encode in self.encoders:
                row.extend(encode(record.get(name)))
            rows.append(row)
        logits = np.asarray(rows, dtype=float) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def predict_proba(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        positive = self.positive_probability(records)
        return np.column_stack([1.0 - positive, positive])


def compile_pipeline(estimator: Any) -> FastScorer | None:
    """The numpy scorer of a supported fitted pipeline, or ``None`` when it is not supported."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        return None
    (_, preprocess), (_, model) = estimator.steps
    if not isinstance(preprocess, ColumnTransformer) or not isinstance(model, LogisticRegression):
        return None
    if model.coef_.shape[0] != 1 or len(model.classes_) != 2:
        return None  # binary only: the multinomial form is another formula
    encoders: list[tuple[str, Encode]] = []
    for _, transformer, columns in preprocess.transformers_:
        if transformer == "drop":
            continue
        steps = transformer.steps if isinstance(transformer, Pipeline) else [("", transformer)]
        for index, column in enumerate(columns):
            if not isinstance(column, str):
                return None
            encode = _chain([step for _, step in steps], index)
            if encode is None:
                return None
            encoders.append((column, encode))
    width = sum(len(encode(None)) for _, encode in encoders)
    if width != model.coef_.shape[1]:
        return None
    # Typed after LinearModel, whose intercept_ may be a float; a LogisticRegression's is an array.
    intercept = float(model.intercept_[0])  # pyright: ignore[reportIndexIssue]
    return FastScorer(tuple(encoders), model.coef_[0].astype(float), intercept)


def verified(estimator: Any, types: FeatureTypes, reference: pd.DataFrame) -> FastScorer | None:
    """The fast scorer of ``estimator`` if it gives the same probabilities as ``predict_proba``
    on the reference rows, a record with every feature missing and one with unseen categories;
    ``None`` otherwise (the caller then scores with scikit-learn)."""
    scorer = compile_pipeline(estimator)
    if scorer is None:
        return None
    records = records_from_frame(reference.head(_CHECK_ROWS), types.names)
    records.append(dict.fromkeys(types.names))
    records.append({**records[0], **{name: "never-seen-in-training" for name in types.categorical}})
    frame = prepare_features(pd.DataFrame.from_records(records, columns=types.names), types)
    try:
        fast = scorer.predict_proba(records)
    except (TypeError, ValueError):
        return None
    expected = estimator.predict_proba(frame)
    return scorer if np.allclose(fast, expected, rtol=1e-9, atol=1e-12) else None


def _chain(steps: list[Any], index: int) -> Encode | None:
    """One column through imputer -> scaler -> one-hot steps, as scikit-learn applies them."""
    parts: list[Callable[[Any], Any]] = []
    finish: Callable[[Any], list[float]] = lambda value: [float(value)]  # noqa: E731
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if isinstance(step, SimpleImputer) and not step.add_indicator:
            # Typed as maybe None (before fitting); a fitted imputer has an array.
            fill = step.statistics_[index]  # pyright: ignore[reportOptionalSubscript]
            if fill is None or (isinstance(fill, float) and math.isnan(fill)):
                return None  # an all-missing training column is dropped: not this formula
            if isinstance(fill, str):
                # On object columns scikit-learn's NaN mask is ``x != x``: None is a value to it
                # (prepare_features turns missing categories into None), only NaN is imputed.
                parts.append(lambda v, fill=fill: fill if _nan(v) else v)
            else:
                parts.append(lambda v, fill=fill: fill if v is None or _nan(v) else v)
        elif isinstance(step, StandardScaler):
            # Typed after every assignment in scikit-learn (0.0 on a first partial_fit pass);
            # once fitted they are arrays, or None when the scaler skips that step.
            mean = 0.0 if step.mean_ is None else float(step.mean_[index])  # pyright: ignore[reportIndexIssue]
            scale = 1.0 if step.scale_ is None else float(step.scale_[index])  # pyright: ignore[reportIndexIssue]
            parts.append(lambda v, m=mean, s=scale: (float(v) - m) / s)
        elif isinstance(step, OneHotEncoder) and last and _plain_one_hot(step):
            positions = {value: i for i, value in enumerate(step.categories_[index])}
            size = len(positions)

            def one_hot(value: Any, positions=positions, size=size) -> list[float]:
                row = [0.0] * size
                # prepare_features hands categories to the model as strings.
                key = value if value is None or isinstance(value, str) else str(value)
                hit = positions.get(key)
                if hit is not None:
                    row[hit] = 1.0
                return row

            finish = one_hot
        else:
            return None

    def encode(value: Any) -> list[float]:
        for part in parts:
            value = part(value)
        return finish(value)

    return encode


def _plain_one_hot(step: OneHotEncoder) -> bool:
    return (
        step.drop is None
        and step.handle_unknown == "ignore"
        and getattr(step, "infrequent_categories_", None) is None
    )


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)

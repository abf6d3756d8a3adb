"""One model version, loaded and checked, ready to score batches of validated records."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from platform_core import contract
from platform_core.contract import FeatureTypes, prepare_features
from platform_core.settings import Settings
from serving import fast_path
from serving.fast_path import FastScorer
from serving.schema import RecordSchema, records_from_frame

# Rows of the version's own reference sample it must score before it may serve.
_SMOKE_ROWS = 5


@dataclass(frozen=True)
class Scores:
    predictions: list[int]
    probabilities: list[float]


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    run_id: str
    estimator: Any
    types: FeatureTypes
    schema: RecordSchema
    load_seconds: float
    # The same model in numpy (serving/fast_path.py): ~0.01 ms a record where scikit-learn's
    # per-call overhead costs ~4 ms. None when the pipeline is not one it reproduces exactly.
    fast: FastScorer | None = None

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]:
        """Score several requests' records in one call (the per-call cost dominates)."""
        rows = [row for batch in batches for row in batch]
        if self.fast is not None:
            probabilities = self.fast.predict_proba(rows)
        else:
            frame = prepare_features(
                pd.DataFrame.from_records(rows, columns=self.types.names), self.types
            )
            probabilities = self.estimator.predict_proba(frame)
        classes = self.estimator.classes_
        predicted = classes[np.argmax(probabilities, axis=1)].astype(int).tolist()
        # The positive class is the larger label (1 for the platform's binary targets).
        positive = probabilities[:, int(np.argmax(classes))].tolist()
        scores, start = [], 0
        for batch in batches:
            end = start + len(batch)
            scores.append(Scores(predicted[start:end], positive[start:end]))
            start = end
        return scores


def load(client: MlflowClient, settings: Settings, version: ModelVersion) -> LoadedModel:
    """Load a registered version and prove it can score its own reference rows."""
    started = time.monotonic()
    estimator = contract.load_sklearn_model(contract.model_uri(settings, version=version.version))
    types = contract.load_feature_types(client, version)
    reference = contract.load_reference(client, version)
    loaded = LoadedModel(
        name=settings.model_name,
        version=str(version.version),
        run_id=version.run_id or "",
        estimator=estimator,
        types=types,
        schema=RecordSchema(
            types.kinds, closed_categories(estimator, types), training_ranges(reference, types)
        ),
        load_seconds=0.0,
    )
    smoke = records_from_frame(reference.head(_SMOKE_ROWS), types.names)
    loaded.score([loaded.schema.validate(smoke)])
    fast = fast_path.verified(estimator, types, reference)
    return dataclasses.replace(loaded, fast=fast, load_seconds=time.monotonic() - started)


def training_ranges(reference: pd.DataFrame, types: FeatureTypes) -> dict[str, tuple[float, float]]:
    """Numeric feature -> (min, max) in the reference sample, for features it has values for."""
    bounds = reference[types.numeric].agg(["min", "max"])
    # pandas-stubs type a cell as any scalar (a string too); these are numeric columns.
    return {
        name: (float(bounds.at["min", name]), float(bounds.at["max", name]))  # pyright: ignore[reportArgumentType]
        for name in types.numeric
        if bounds[name].notna().all()
    }


def closed_categories(estimator: Any, types: FeatureTypes) -> dict[str, frozenset[str]]:
    """Categoricals whose encoder raises on an unseen value, with the values it knows.

    Looks through a ColumnTransformer (directly or as a pipeline step) for one-hot or ordinal
    encoders with ``handle_unknown="error"``. Anything it does not recognise is assumed to cope
    with unseen values, which is what the platform's own pipeline does.
    """
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    closed: dict[str, frozenset[str]] = {}
    for _, step in steps:
        if not isinstance(step, ColumnTransformer):
            continue
        for _, transformer, columns in step.transformers_:
            parts = transformer.steps if isinstance(transformer, Pipeline) else [("", transformer)]
            for _, part in parts:
                if not isinstance(part, OneHotEncoder | OrdinalEncoder):
                    continue
                if part.handle_unknown != "error":
                    continue
                for column, categories in zip(columns, part.categories_, strict=True):
                    if column in types.categorical:
                        closed[column] = frozenset(str(c) for c in categories if c is not None)
    return closed

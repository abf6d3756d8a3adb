"""One model version, loaded and checked, ready to score batches of validated records.

A version is scored with the feature transforms it declares in the registry
(:mod:`serving.transforms`), applied to a copy of the records: what the log keeps is what the
client sent. The declaration may change while the version is served; :meth:`LoadedModel.declaring`
gives the same model with the new one, checked on the version's own reference rows first.
"""

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
from serving import fast_path, transforms
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
    # What the version declares serving applies before the model: the tag as written, parsed.
    transforms_spec: str = ""
    transforms: transforms.Parsed = ()
    # A few of the version's reference rows, as a client would send them: the smoke test of a
    # new declaration.
    smoke: tuple[dict[str, Any], ...] = ()

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]:
        """Score several requests' records in one call (the per-call cost dominates)."""
        rows = transforms.apply(self.transforms, [row for batch in batches for row in batch])
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

    def declaring(self, spec: str) -> LoadedModel:
        """The same model with the transforms ``spec`` declares, once they have scored the
        version's reference rows. Raises :class:`serving.transforms.Unreadable` when they cannot
        be parsed, name a feature the model does not take, or fail on its own rows."""
        try:
            parsed = tuple(transforms.parse(spec))
        except ValueError as error:
            raise transforms.Unreadable(self.version, spec, str(error)) from None
        unknown = sorted({feature for feature, _, _ in parsed} - set(self.types.names))
        if unknown:
            problem = f"the model takes no feature {', '.join(map(repr, unknown))}"
            raise transforms.Unreadable(self.version, spec, problem)
        declaring = dataclasses.replace(self, transforms_spec=spec, transforms=parsed)
        try:
            declaring.score([self.smoke])
        except Exception as error:
            problem = f"its reference rows fail to score ({type(error).__name__}: {error})"
            raise transforms.Unreadable(self.version, spec, problem) from None
        return declaring


def load(client: MlflowClient, settings: Settings, version: ModelVersion) -> LoadedModel:
    """Load a registered version and prove it can score its own reference rows, with the
    transforms it declares (:class:`serving.transforms.Unreadable` if it cannot)."""
    started = time.monotonic()
    spec = transforms.declared(version.tags)
    try:
        transforms.parse(spec)  # before the download: a tag nobody can read costs no model load
    except ValueError as error:
        raise transforms.Unreadable(str(version.version), spec, str(error)) from None
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
    rows = records_from_frame(reference.head(_SMOKE_ROWS), types.names)
    smoke = tuple(loaded.schema.validate(rows))
    loaded.score([smoke])
    fast = fast_path.verified(estimator, types, reference)
    loaded = dataclasses.replace(loaded, fast=fast, smoke=smoke).declaring(spec)
    return dataclasses.replace(loaded, load_seconds=time.monotonic() - started)


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

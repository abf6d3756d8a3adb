"""Small real models for tests and benchmarks, registered with the pipeline's own functions.

No Prefect flow is involved: serving and monitoring tests need a version in the registry, not a
training run (the pipeline tests cover the flows). :func:`register_foreign_model` registers one
without the pipeline, as anyone who can write to MLflow could: what the platform must refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn as mlflow_sklearn
from sklearn.pipeline import Pipeline

from pipelines import data, training
from pipelines.sources import generated_types
from platform_core import contract
from platform_core.settings import Settings

TYPES = generated_types()


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    run_id: str
    model: Pipeline


def register_model(
    settings: Settings,
    seed: int = 1,
    rows: int = 1_500,
    label: str = "tests",
    scenario: str = "baseline",
) -> RegisteredModel:
    """Train on generated data (baseline unless told) and register a new version (no alias is
    set)."""
    frame = data.generate(rows, scenario, seed=seed)
    split = training.split(frame, TYPES, seed)
    model = training.build_pipeline(TYPES, seed).fit(split.X_train, split.y_train)
    version = training.log_and_register(
        settings,
        model,
        split,
        TYPES,
        training.evaluate(model, split.X_test, split.y_test),
        training.reference_sample(frame, min(rows, settings.reference_rows), seed),
        tags={
            contract.TAG_DATA_HASH: training.data_hash(frame),
            contract.TAG_DATA_SOURCE: f"{label}:seed={seed}",
            contract.TAG_CODE_VERSION: "tests",
        },
        run_name=f"{label}-{seed}",
    )
    assert version.run_id is not None, f"version {version.version} was registered without a run"
    return RegisteredModel(version.version, version.run_id, model)


def set_champion(settings: Settings, version: str) -> None:
    contract.client_for(settings).set_registered_model_alias(
        settings.model_name, settings.champion_alias, version
    )


def register_champion(
    settings: Settings, seed: int = 1, rows: int = 3_000, label: str = "tests"
) -> RegisteredModel:
    """Register a version with its reference sample and make it the champion."""
    registered = register_model(settings, seed=seed, rows=rows, label=label)
    set_champion(settings, registered.version)
    return registered


class TouchOnLoad:
    """A "model" whose unpickling creates the file ``marker``: what any code in a pickle could do
    (start a shell, read the registry's credentials) in the process that loads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return Path.touch, (self.marker,)

    def predict(self, rows: Any) -> Any:  # what MLflow's sklearn flavor expects of a model
        return rows


def register_foreign_model(
    settings: Settings,
    model: Any,
    serialization_format: str,
    skops_trusted_types: list[str] | None = None,
) -> str:
    """Register ``model`` as a new version the way anyone who can write to MLflow could: through
    mlflow.sklearn in ``serialization_format``, without the platform's pipeline."""
    mlflow.set_tracking_uri(settings.mlflow_url)
    mlflow.set_registry_uri(settings.mlflow_url)
    mlflow.set_experiment(settings.experiment_name)
    with mlflow.start_run(run_name=f"foreign-{serialization_format}"):
        info = mlflow_sklearn.log_model(
            model,
            name="model",
            serialization_format=serialization_format,
            skops_trusted_types=skops_trusted_types,
            # Given, so MLflow does not load the model to infer them (which would unpickle it).
            pip_requirements=["scikit-learn"],
            registered_model_name=settings.model_name,
        )
    return str(info.registered_model_version)

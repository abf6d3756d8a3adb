"""Plain functions for fitting, evaluating and registering a model.

The Prefect flows in this package call these as tasks; tests and benchmarks may call them
directly. They write every version according to :mod:`mlops_lab.core.contract`.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import skops.io
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_lab.core import contract
from mlops_lab.core.contract import FeatureTypes, prepare_features
from mlops_lab.core.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split(frame: pd.DataFrame, types: FeatureTypes, seed: int, test_size: float = 0.25) -> Split:
    X = prepare_features(frame, types)
    y = frame[types.target].astype(int)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y
    )
    return Split(X_train, X_test, y_train, y_test)


def build_pipeline(types: FeatureTypes, seed: int) -> Pipeline:
    """Impute and scale numerics, impute and one-hot categoricals, then a logistic regression.

    Unknown categories are ignored (all-zero one-hot), so a new category degrades the model
    gracefully instead of failing requests; drift monitoring is what flags it.
    """
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric, types.numeric), ("categorical", categorical, types.categorical)]
    )
    return Pipeline(
        [
            ("preprocess", preprocess),
            ("model", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )


def evaluate(model: Pipeline, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    probability = model.predict_proba(X)[:, 1]
    predicted = (probability >= 0.5).astype(int)
    return {
        "auc": float(roc_auc_score(y, probability)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
    }


def data_hash(frame: pd.DataFrame) -> str:
    """Content hash of the training data (row order and column order included)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    columns = ",".join(frame.columns).encode()
    return hashlib.sha256(columns + hashed.tobytes()).hexdigest()[:16]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=5
    ).stdout.strip()


def code_version() -> str:
    """The git commit of this checkout, marked dirty if it has uncommitted changes."""
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def log_and_register(
    settings: Settings,
    model: Pipeline,
    data: Split,
    types: FeatureTypes,
    metrics: dict[str, float],
    reference: pd.DataFrame,
    tags: dict[str, str],
    run_name: str | None = None,
) -> ModelVersion:
    """Log the run (params, held-out metrics, reference sample) and register a new version."""
    mlflow.set_tracking_uri(settings.mlflow_url)
    mlflow.set_registry_uri(settings.mlflow_url)
    mlflow.set_experiment(settings.experiment_name)
    client = contract.client_for(settings)
    with mlflow.start_run(run_name=run_name):
        mlflow.log_params(
            {
                "estimator": type(model[-1]).__name__,
                "rows_train": len(data.X_train),
                "rows_test": len(data.X_test),
                "features": len(types.names),
            }
        )
        mlflow.log_metrics({f"test_{name}": value for name, value in metrics.items()})
        mlflow.set_tags(tags)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(contract.REFERENCE_ARTIFACT).name
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), Path(contract.REFERENCE_ARTIFACT).parent.as_posix())
        mlflow.log_dict(types.to_json(), contract.FEATURE_TYPES_ARTIFACT)
        signature = infer_signature(data.X_train, model.predict_proba(data.X_train.head(50))[:, 1])
        serialized = skops.io.dumps(model)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=data.X_train.head(3),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            # skops refuses to load types it was not told to trust; trust exactly what this
            # pipeline contains (for a scikit-learn pipeline: numpy.dtype).
            skops_trusted_types=skops.io.get_untrusted_types(data=serialized),
            # What loading the model needs, pinned: scikit-learn, skops and MLflow itself. Without
            # this, MLflow exports the whole project lock (200+ packages, ~1 s per model), which
            # describes the platform's environment rather than the model's.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            registered_model_name=settings.model_name,
        )
        version = client.get_model_version(settings.model_name, str(info.registered_model_version))
        for key, value in {**tags, contract.TAG_TARGET: types.target}.items():
            client.set_model_version_tag(settings.model_name, version.version, key, value)
        for name, value in metrics.items():
            client.set_model_version_tag(
                settings.model_name, version.version, f"test_{name}", f"{value:.4f}"
            )
    return client.get_model_version(settings.model_name, version.version)


def reference_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=np.random.RandomState(seed)).reset_index(drop=True)

"""What every registered model version carries, and how serving and monitoring read it.

Training writes these; serving (input schema, feature preparation) and the drift monitor
(reference data, feature types) read them. Keeping both sides here means a model trained on a
learner's own CSV is served and monitored exactly like one trained on generated data.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from platform_core import model_trust
from platform_core.errors import PlatformError
from platform_core.settings import Settings

# MLflow takes seconds to import; reading feature types and preparing frames (CSV validation,
# the CLI) must not pay for it. Functions that talk to MLflow import it themselves. The same goes
# for pandas (about 90 MiB resident, pyarrow included): processes that import this module without
# handling frames, such as the flows runner and serving's supervising parent, must not hold it.
if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

FeatureKind = Literal["numeric", "categorical"]

# Artifacts logged to the training run of every version.
REFERENCE_ARTIFACT = "reference/reference.parquet"
FEATURE_TYPES_ARTIFACT = "reference/feature_types.json"

# Model version tags (lineage). Values are strings.
TAG_TARGET = "target"
TAG_DATA_HASH = "data_hash"
TAG_DATA_SOURCE = "data_source"  # "scenario:baseline", "file:loans.csv", "retrain:..."
TAG_FLOW_RUN_ID = "flow_run_id"
TAG_CODE_VERSION = "code_version"
# What serving must apply to a version's inputs before its model ("feature:transform,...", see
# serving/transforms.py): the preprocessing a model needs travels with the model version, not
# with one server's configuration. Whoever registers a model trained on transformed inputs sets
# it; the platform's own models carry their preprocessing in the pipeline and declare none. A
# version's training run may record the same tag: what its model was trained with.
TAG_SERVING_TRANSFORMS = "serving_feature_transforms"


@dataclass(frozen=True)
class FeatureTypes:
    """Feature name -> kind, in the column order the model expects, plus the target's name."""

    kinds: dict[str, FeatureKind]
    target: str

    @property
    def names(self) -> list[str]:
        return list(self.kinds)

    @property
    def numeric(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == "categorical"]

    def to_json(self) -> dict:
        return {"target": self.target, "features": self.kinds}

    @classmethod
    def from_json(cls, data: dict) -> FeatureTypes:
        return cls(kinds=dict(data["features"]), target=data["target"])


def prepare_features(frame: pd.DataFrame, types: FeatureTypes) -> pd.DataFrame:
    """The frame the model sees, in training and serving alike.

    Numerics become float64 so a missing value is NaN (the pipeline imputes it) rather than a
    dtype error; categoricals become Python strings with None for missing.
    """
    import pandas as pd

    columns: dict[str, pd.Series] = {}
    for name in types.names:
        if types.kinds[name] == "numeric":
            columns[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
        else:
            column = frame[name].astype(object)
            # pandas-stubs leave out None for ``other``; an object column takes it as it is.
            kept = column.where(column.notna(), None)  # pyright: ignore[reportArgumentType]
            columns[name] = kept.map(lambda v: v if v is None else str(v))
    # One constructor call: adding columns one by one costs milliseconds per serving request.
    return pd.DataFrame(columns, index=frame.index)


def filter_value(value: str) -> str:
    """``value`` quoted for an MLflow search filter (``name = <this>``).

    MLflow's filter syntax has no escape character: a value is whatever lies between its quotes,
    single or double. So a value with one kind of quote goes inside the other kind, and a value
    with both cannot be searched for at all.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise PlatformError(
        f"{value!r} holds both single and double quotes, which MLflow searches cannot express.",
        hint="Use a name with at most one kind of quote (letters, digits, '-', '_' are safest).",
    )


def check_model_name(name: str) -> str:
    """``name`` if MLflow can register it and this platform can search for it, else why not."""
    problems = []
    if not name.strip():
        problems.append("it is empty")
    if "/" in name or ":" in name:
        problems.append("MLflow model names cannot contain '/' or ':'")
    if "'" in name and '"' in name:
        problems.append(
            "it holds both single and double quotes, which MLflow searches cannot express"
        )
    if problems:
        raise PlatformError(
            f"{name!r} cannot be a model name: {'; '.join(problems)}.",
            hint="Use letters, digits, '-' and '_', e.g. --model-name churn.",
        )
    return name


def client_for(settings: Settings) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_url, registry_uri=settings.mlflow_url)


def version_by_alias(client: MlflowClient, settings: Settings, alias: str) -> ModelVersion | None:
    """The version behind an alias, or None if the model or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion(client: MlflowClient, settings: Settings) -> ModelVersion | None:
    return version_by_alias(client, settings, settings.champion_alias)


def _read_artifact(client: MlflowClient, version: ModelVersion, artifact: str, read):
    """Download one artifact of the version's run to a temp dir, parse it with ``read(path)``,
    remove the copy. A version registered without a run (by hand) has none: FileNotFoundError."""
    if version.run_id is None:
        raise FileNotFoundError(
            f"{version.name} v{version.version} was registered without a run, so it has no "
            f"{artifact}"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-lab-artifact-") as target:
        return read(Path(client.download_artifacts(version.run_id, artifact, target)))


def load_feature_types(client: MlflowClient, version: ModelVersion) -> FeatureTypes:
    data = _read_artifact(
        client, version, FEATURE_TYPES_ARTIFACT, lambda p: json.loads(p.read_text())
    )
    return FeatureTypes.from_json(data)


def load_reference(client: MlflowClient, version: ModelVersion) -> pd.DataFrame:
    """The training-data sample (features and target) drift is measured against."""
    import pandas as pd

    return _read_artifact(client, version, REFERENCE_ARTIFACT, pd.read_parquet)


def model_uri(settings: Settings, alias: str | None = None, version: str | None = None) -> str:
    if version is not None:
        return f"models:/{settings.model_name}/{version}"
    return f"models:/{settings.model_name}@{alias or settings.champion_alias}"


def load_sklearn_model(uri: str) -> Any:
    """The fitted scikit-learn pipeline (it has predict_proba, which pyfunc hides), loaded only
    if the platform trusts what it holds (:mod:`platform_core.model_trust`)."""
    return model_trust.load_sklearn_model(uri)

"""Models load only in the format and with the types the platform trusts, never as the artifact
says (platform_core/model_trust.py). Against the serving tests' MLflow, under a model of their own,
so the platform's versions stay as they are."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import mlflow.sklearn as mlflow_sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from pipelines import data
from platform_core import contract, mlflow_client, telemetry
from platform_core.model_trust import UntrustedModel
from platform_core.settings import Settings
from tests.models import TYPES, TouchOnLoad, register_foreign_model, register_model
from tests.serving.conftest import Platform
from tests.support import unset_until_undone


@pytest.fixture(scope="module")
def foreign(platform: Platform) -> Settings:
    name = f"foreign-{uuid.uuid4().hex[:8]}"
    return platform.settings.model_copy(update={"model_name": name, "experiment_name": name})


@pytest.mark.parametrize("serialization_format", ["pickle", "cloudpickle"])
def test_a_pickled_model_is_refused_and_its_code_never_runs(
    foreign: Settings, tmp_path: Path, serialization_format: str
) -> None:
    marker = tmp_path / "unpickled"
    version = register_foreign_model(foreign, TouchOnLoad(marker), serialization_format)
    uri = contract.model_uri(foreign, version=version)

    refused = re.escape(f"{uri}: it is serialized as '{serialization_format}'")
    with pytest.raises(UntrustedModel, match=refused):
        contract.load_sklearn_model(uri)
    assert not marker.exists()


def test_a_skops_model_with_a_type_outside_the_list_is_refused(foreign: Settings) -> None:
    # The artifact trusts os.system in its own MLmodel, as a crafted one would.
    dangerous = f"{os.system.__module__}.{os.system.__name__}"
    model = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    version = register_foreign_model(foreign, model, "skops", skops_trusted_types=[dangerous])

    with pytest.raises(UntrustedModel, match=re.escape(f"does not trust: {dangerous} ")):
        contract.load_sklearn_model(contract.model_uri(foreign, version=version))


def test_a_model_whose_file_is_missing_is_not_refused_as_untrusted(
    foreign: Settings, platform: Platform
) -> None:
    # Refused versions are not retried until the alias moves; a missing file may come back.
    registered = register_model(foreign, seed=6, rows=600)
    uri = contract.model_uri(foreign, version=registered.version)
    location = MlflowClient(foreign.mlflow_url).get_model_version_download_uri(
        foreign.model_name, registered.version
    )
    folder = platform.settings.paths.mlflow / "artifacts" / location.split(":/", 1)[1].lstrip("/")
    [model_file] = folder.glob("*.skops")
    model_file.unlink()

    with pytest.raises(FileNotFoundError, match=re.escape(f"{uri} has no model file")):
        contract.load_sklearn_model(uri)


def test_the_platforms_own_model_loads_and_scores_as_trained(foreign: Settings) -> None:
    registered = register_model(foreign, seed=5, rows=600)
    rows = contract.prepare_features(data.generate(20, seed=9), TYPES)

    loaded = contract.load_sklearn_model(contract.model_uri(foreign, version=registered.version))

    assert np.array_equal(loaded.predict_proba(rows), registered.model.predict_proba(rows))


def test_mlflow_own_loader_is_switched_off_in_the_platforms_processes(
    foreign: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    version = register_foreign_model(foreign, TouchOnLoad(marker), "cloudpickle")

    with pytest.MonkeyPatch.context() as patch:
        for key in (*mlflow_client.ENV_KEYS, *telemetry.OFF):
            unset_until_undone(patch, key)
        mlflow_client.apply(mlflow_client.SERVING)
        with pytest.raises(MlflowException, match=mlflow_client.PICKLE_SWITCH):
            mlflow_sklearn.load_model(contract.model_uri(foreign, version=version))
    assert not marker.exists()

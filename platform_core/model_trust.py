"""What the platform trusts in a registered model, and the one way it loads one.

A registered model is code the platform runs: whoever can write to MLflow chooses what serving,
the quality gate and the labs deserialize. So what may be deserialized is decided here, in code,
and never read from the artifact:

- the skops format only. Pickle and cloudpickle run whatever the file says while it loads;
- the types skops trusts by default (scikit-learn's estimators, numpy and scipy containers) and
  :data:`PLATFORM_TRUSTED_TYPES`, nothing more. The ``skops_trusted_types`` an artifact's MLmodel
  lists is ignored: a crafted model would list whatever it needs;
- nothing from the artifact's ``code`` directory is put on ``sys.path``.

MLflow's own loaders (``mlflow.sklearn.load_model``, ``mlflow.pyfunc.load_model``) follow the
artifact on all three counts, which is why the platform's processes switch them off
(:mod:`platform_core.mlflow_client`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from platform_core.errors import PlatformError

# The types beyond skops' defaults that a fitted model of the platform's pipeline holds
# (pipelines.training.build_pipeline on any scenario, or on a CSV with only numeric or only
# categorical features), as skops.io.get_untrusted_types reported them with skops 0.16 and
# scikit-learn 1.9. Training writes this same list into each model's MLmodel, for MLflow's own
# tools. tests/pipelines/test_model_trust.py fails when the pipeline needs a type missing here.
# To regenerate after changing the pipeline or upgrading skops or scikit-learn: fit the pipeline
# as tests/models.py does, print skops.io.get_untrusted_types(data=skops.io.dumps(model)), and add
# a type only once you know what an object of it can do when a crafted file builds it.
PLATFORM_TRUSTED_TYPES: tuple[str, ...] = ("numpy.dtype",)

SKOPS_FORMAT = "skops"
# What MLflow assumes when an MLmodel names no format (mlflow.sklearn.load_model does the same).
_MLFLOW_DEFAULT_FORMAT = "pickle"
_RETRAIN = (
    "The platform loads only models its own pipeline writes. Train one (`mlops-lab train`) and "
    "make it champion (`mlops-lab model promote VERSION`), or move the alias back "
    "(`mlops-lab model rollback`)."
)


class UntrustedModel(PlatformError):
    """A registered model the platform refuses to load: a format or a type it does not trust."""


def load_sklearn_model(uri: str) -> Any:
    """The fitted scikit-learn model at ``uri`` (``models:/...`` or ``runs:/...``), built with
    the platform's trust list; :class:`UntrustedModel` if the artifact needs more than that."""
    import skops.io
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="mlops-lab-model-") as target:
        model_dir = Path(download_artifacts(artifact_uri=uri, dst_path=target))
        path = _skops_file(uri, model_dir)
        refused = [
            name
            for name in skops.io.get_untrusted_types(file=path)
            if name not in PLATFORM_TRUSTED_TYPES
        ]
        if refused:
            raise UntrustedModel(
                f"Refusing to load {uri}: it holds types the platform does not trust: "
                f"{', '.join(refused)} (trusted beyond skops' defaults: "
                f"{', '.join(PLATFORM_TRUSTED_TYPES)}).",
                hint=_RETRAIN,
            )
        # skops audits the file again as it builds the objects, against the same list.
        return skops.io.load(path, trusted=list(PLATFORM_TRUSTED_TYPES))


def _skops_file(uri: str, model_dir: Path) -> Path:
    """The downloaded model's skops file, once its MLmodel says it is one."""
    from mlflow.models import Model

    flavor = Model.load(str(model_dir / "MLmodel")).flavors.get("sklearn")
    if flavor is None:
        raise UntrustedModel(f"Refusing to load {uri}: it has no scikit-learn flavor.", _RETRAIN)
    found = flavor.get("serialization_format", _MLFLOW_DEFAULT_FORMAT)
    if found != SKOPS_FORMAT:
        raise UntrustedModel(
            f"Refusing to load {uri}: it is serialized as {found!r}, and the platform loads only "
            f"{SKOPS_FORMAT!r} (loading a pickle runs whatever code the file holds).",
            hint=_RETRAIN,
        )
    name = str(flavor.get("pickled_model", ""))
    path = (model_dir / name).resolve()
    if not name or not path.is_relative_to(model_dir.resolve()):
        raise UntrustedModel(
            f"Refusing to load {uri}: its MLmodel names {name!r} as the model file, which is not "
            "inside the model.",
            hint=_RETRAIN,
        )
    if not path.is_file():
        # Missing, not untrusted: the version loads again once the file is back in the store.
        raise FileNotFoundError(
            f"{uri} has no model file {name!r} (its MLmodel names it): missing from the "
            "artifact store"
        )
    return path

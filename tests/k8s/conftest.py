"""The kustomize renderings of k8s/ (kubectl's built-in kustomize), once per test session."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from mlops_lab.runtime.kube.assets import K8S_DIR

# What `kubectl kustomize` renders: the base alone (what must run on Kubernetes 1.20) and every
# overlay under k8s/overlays/ (kind, ci, cloud...), found rather than listed so none is left out.
VARIANTS = {
    "base": "base",
    **{
        path.parent.name: f"overlays/{path.parent.name}"
        for path in sorted((K8S_DIR / "overlays").glob("*/kustomization.yaml"))
    },
}


class _Loader(yaml.SafeLoader):
    """kustomize writes the string "=" (an AlertmanagerConfig matchType) unquoted, which YAML 1.1
    tags as the obsolete "value" type; Go's YAML, what the cluster reads it with, sees "="."""


_Loader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_scalar)


def render(path: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: it renders the kustomizations (kubectl kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR / path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"`kubectl kustomize k8s/{path}` failed:\n{result.stderr}"
    return [doc for doc in yaml.load_all(result.stdout, Loader=_Loader) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    return {name: render(path) for name, path in VARIANTS.items()}


def of_kind(documents: list[dict], *kinds: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] in kinds]


def named(documents: list[dict], kind: str, name: str) -> dict:
    found = [d for d in of_kind(documents, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def pod_specs(documents: list[dict]) -> dict[str, dict]:
    """Workload name -> pod spec, for every Deployment and StatefulSet."""
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
        for doc in of_kind(documents, "Deployment", "StatefulSet")
    }

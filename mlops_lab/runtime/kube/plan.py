"""What the Kubernetes runtimes write and pass on, computed without touching a cluster.

The host reaches each UI at the local runtime's port: kind publishes a NodePort per service on
127.0.0.1 (cluster root), the NodePorts of the platform's Services come from
``k8s/overlays/kind/ports.json`` (generated with the manifests) and those of Prometheus,
Alertmanager and Grafana from :data:`MONITORING_NODE_PORTS` (passed to the platform root).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_lab.runtime.kube import assets as kube_assets
from mlops_lab.runtime.kube.assets import MONITORING_NAMESPACE, NAMESPACE, RELEASE
from mlops_lab.runtime.services import by_name
from platform_core.errors import PlatformError
from platform_core.paths import private_dir
from platform_core.settings import REPO_ROOT, Settings

TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
# The manifests' side of the contract (namespace, release label, NodePorts) is kube_assets'.
K8S_DIR = kube_assets.K8S_DIR
PORTS_FILE = kube_assets.PORTS_JSON
IMAGE_TAGS_FILE = REPO_ROOT / "build" / "image-tags.json"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-images.sh"
CLUSTER_NAME = "mlops-lab"
SECRET_NAME = "mlops-lab-secrets"
IMAGES = ("mlops-lab-platform", "mlops-lab-postgres")
# The platform's Deployments, in the order their rollouts are awaited (dependencies first).
DEPLOYMENTS = (
    "postgres",
    "mlflow",
    "prefect",
    "flows",
    "serving",
    "drift-monitor",
    "alert-receiver",
)
# kube-prometheus-stack's UIs: NodePorts set in the platform root's Helm values, in the band
# 30000-30085 as the platform's own (see kube_assets.NODE_PORTS).
MONITORING_NODE_PORTS = {"prometheus": 30070, "alertmanager": 30073, "grafana": 30001}
POSTGRES_USER = "mlops"


@dataclass(frozen=True)
class KubePaths:
    """Where the Kubernetes runtimes keep their state inside the platform home.

    Always absolute: Terraform runs with ``-chdir=infra/terraform/<root>`` and would resolve a
    relative state, data dir or kubeconfig path (MLOPS_LAB_HOME=./.lab) from there."""

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", self.home.absolute())

    @property
    def root(self) -> Path:
        return self.home / "kube"

    @property
    def terraform(self) -> Path:
        """Both roots' states, variables and provider plugins."""
        return self.root / "terraform"

    def ensure(self) -> None:
        """Create the kube dir and Terraform's, private (0700): the states hold the kind
        cluster's admin key and Grafana's password, and the kubeconfig the cluster's keys."""
        private_dir(self.root)
        private_dir(self.terraform)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def overlay(self) -> Path:
        return self.root / "overlay"

    def terraform_data(self, root: str) -> Path:
        """TF_DATA_DIR of one root: providers and backend config stay out of the checkout."""
        return self.terraform / root

    def tfstate(self, root: str) -> Path:
        return self.terraform / f"{root}.tfstate"

    def tfvars(self, root: str) -> Path:
        return self.terraform / f"{root}.tfvars.json"

    @property
    def forwards(self) -> Path:
        """PIDs of the `kubectl port-forward` processes of the kube runtime."""
        return self.root / "port-forwards.json"

    @property
    def on_demand(self) -> Path:
        """PIDs of the on-demand services running on this machine (the front end)."""
        return self.root / "on-demand.json"


def read_node_ports(path: Path = PORTS_FILE) -> dict[str, int]:
    """Service name → NodePort from the kind overlay's table.

    Accepts ``{"mlflow": 30500}``, ``{"mlflow": {"nodePort": 30500, ...}}`` or a list of
    ``{"name": ..., "nodePort": ...}``: the file is generated with the manifests.
    """
    if not path.exists():
        raise PlatformError(
            f"{path} is missing: it holds the NodePorts the kind cluster publishes.",
            hint="Generate it with `make k8s-assets`.",
        )
    data = json.loads(path.read_text())
    entries = data.items() if isinstance(data, dict) else ((e["name"], e) for e in data)
    table = {}
    for name, entry in entries:
        value = entry.get("nodePort", entry.get("node_port")) if isinstance(entry, dict) else entry
        if value is None:
            raise PlatformError(f"{path}: no nodePort for {name!r}.")
        table[name] = int(value)
    return table


def port_mappings(settings: Settings, node_ports: dict[str, int]) -> list[dict[str, Any]]:
    """The cluster root's ``port_mappings``: host port = the local runtime's port setting."""
    mappings = []
    for name, node_port in {**node_ports, **MONITORING_NODE_PORTS}.items():
        mappings.append(
            {"name": name, "host_port": by_name(name).port(settings), "node_port": node_port}
        )
    return sorted(mappings, key=lambda m: m["host_port"])


def cluster_tfvars(settings: Settings, paths: KubePaths, node_ports: dict[str, int]) -> dict:
    return {
        "cluster_name": CLUSTER_NAME,
        "kubeconfig_path": str(paths.kubeconfig),
        "listen_address": settings.host,
        "port_mappings": port_mappings(settings, node_ports),
    }


def platform_tfvars(kubeconfig: Path) -> dict:
    return {
        "kubeconfig_path": str(kubeconfig),
        "platform_namespace": NAMESPACE,
        "monitoring_namespace": MONITORING_NAMESPACE,
        "release_name": RELEASE,
        "prometheus_node_port": MONITORING_NODE_PORTS["prometheus"],
        "alertmanager_node_port": MONITORING_NODE_PORTS["alertmanager"],
        "grafana_node_port": MONITORING_NODE_PORTS["grafana"],
    }


def read_image_tags(path: Path = IMAGE_TAGS_FILE) -> dict[str, str]:
    """Image name → ``name:tag`` as scripts/build-images.sh wrote them."""
    if not path.exists():
        raise PlatformError(f"{path} is missing.", hint="Build the images: `make images`.")
    tags = json.loads(path.read_text())
    missing = [name for name in IMAGES if name not in tags]
    if missing:
        raise PlatformError(f"{path} lacks {', '.join(missing)}.", hint="Run `make images` again.")
    return tags


def overlay_kustomization(overlay_dir: Path, source: Path, image_refs: dict[str, str]) -> str:
    """A kustomization under the platform home: the repo's overlay with this build's tags."""
    images = []
    for name, ref in sorted(image_refs.items()):
        image, _, tag = ref.rpartition(":")
        images.append({"name": name, "newName": image, "newTag": tag})
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize loads directories relative to the kustomization.
        "resources": [os.path.relpath(source, overlay_dir)],
        "images": images,
    }
    header = "# Written by `mlops-lab up` on every run: edit k8s/, not this file.\n"
    return header + yaml.safe_dump(document, sort_keys=False)


def secret_values() -> dict[str, str]:
    """Fresh credentials for the platform's Secret (only used when it does not exist yet)."""
    password = secrets.token_urlsafe(24)
    where = f"{POSTGRES_USER}:{password}@postgres:5432"
    return {
        "postgres-password": password,
        # psycopg 3 and asyncpg are the drivers the lock holds (no psycopg2).
        "prediction-log-url": f"postgresql+psycopg://{where}/predictions",
        "mlflow-backend-uri": f"postgresql+psycopg://{where}/mlflow",
        "prefect-database-url": f"postgresql+asyncpg://{where}/prefect",
    }


def secret_manifest(values: dict[str, str], namespace: str = NAMESPACE) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "mlops-lab"},
        },
        "stringData": values,
    }


def terraform_env(paths: KubePaths, root: str) -> dict[str, str]:
    return {
        **os.environ,
        "TF_DATA_DIR": str(paths.terraform_data(root)),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }


def terraform_init(paths: KubePaths, root: str) -> list[str]:
    return [
        "terraform",
        f"-chdir={TERRAFORM_DIR / root}",
        "init",
        "-input=false",
        f"-backend-config=path={paths.tfstate(root)}",
    ]


def terraform_commands(
    paths: KubePaths, root: str, action: str, refresh: bool = True
) -> list[list[str]]:
    """The terraform command lines for ``action`` (apply or destroy) on one root; without
    ``refresh``, Terraform acts on its state without asking the providers first."""
    run = ["terraform", f"-chdir={TERRAFORM_DIR / root}", action, "-auto-approve", "-input=false"]
    if not refresh:
        run.append("-refresh=false")
    return [terraform_init(paths, root), [*run, f"-var-file={paths.tfvars(root)}"]]


def terraform_state_rm(root: str, address: str) -> list[str]:
    return ["terraform", f"-chdir={TERRAFORM_DIR / root}", "state", "rm", address]


def state_holds(paths: KubePaths, root: str, address: str) -> bool:
    """Whether a root's state file (the local backend's JSON) holds the resource ``address``."""
    path = paths.tfstate(root)
    if not path.exists():
        return False
    resources = json.loads(path.read_text()).get("resources", [])
    return address in {f"{r['type']}.{r['name']}" for r in resources if r.get("mode") == "managed"}


def terraform_output(paths: KubePaths, root: str, name: str) -> list[str]:
    return ["terraform", f"-chdir={TERRAFORM_DIR / root}", "output", "-raw", name]

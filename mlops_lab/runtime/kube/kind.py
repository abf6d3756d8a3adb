"""The kind runtime's own infrastructure: the two Terraform roots and the node container.

Each root keeps its state and provider plugins under ``<home>/kube/terraform`` (see
:class:`KubePaths`); the variables are generated from the settings on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.kubectl import Kubectl
from mlops_lab.runtime.kube.plan import KubePaths
from mlops_lab.runtime.kube.steps import Steps, capture
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from platform_core.waiting import TimedOut, poll

NODE = f"{kube_plan.CLUSTER_NAME}-control-plane"


class KindCluster:
    def __init__(self, settings: Settings, paths: KubePaths, steps: Steps) -> None:
        self.settings = settings
        self.paths = paths
        self.steps = steps

    def provision(self, kubectl: Kubectl) -> Path:
        """Cluster, then the monitoring stack: two roots, each its own state. Returns the
        kubeconfig path (the cluster root's output)."""
        self.start_stopped_node(kubectl)
        node_ports = kube_plan.read_node_ports()
        self._write_tfvars(
            "cluster", kube_plan.cluster_tfvars(self.settings, self.paths, node_ports)
        )
        self.terraform("cluster", "apply", "Creating the kind cluster (Terraform)")
        kubeconfig = Path(
            capture(
                kube_plan.terraform_output(self.paths, "cluster", "kubeconfig_path"),
                env=kube_plan.terraform_env(self.paths, "cluster"),
            )
        )
        self._write_tfvars("platform", kube_plan.platform_tfvars(kubeconfig))
        self.terraform("platform", "apply", "Installing kube-prometheus-stack (Terraform + Helm)")
        return kubeconfig

    def destroy(self, kubectl: Kubectl) -> None:
        """The platform root when its API answers (its objects die with the cluster anyway),
        then the cluster root."""
        if self.paths.tfstate("platform").exists() and kubectl.reachable()[0]:
            self.terraform("platform", "destroy", "Destroying kube-prometheus-stack (Terraform)")
        if self.paths.tfstate("cluster").exists():
            self.terraform("cluster", "destroy", "Destroying the kind cluster (Terraform)")

    def terraform(self, root: str, action: str, title: str) -> None:
        from monitoring.configs import grafana_admin_password

        env = kube_plan.terraform_env(self.paths, root)
        if root == "platform":
            # The same admin password as the local runtime's Grafana, never on a command line.
            env["TF_VAR_grafana_admin_password"] = grafana_admin_password(self.settings)
        self.steps.run(
            title,
            f"terraform-{root}-{action}",
            kube_plan.terraform_commands(self.paths, root, action),
            env=env,
            fix="Providers and charts are downloaded on the first run: check the network, then "
            "run `mlops-lab up` again (Terraform resumes where it stopped).",
        )

    def _write_tfvars(self, root: str, values: dict) -> None:
        path = self.paths.tfvars(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")

    def load_images(self, refs: list[str]) -> None:
        self.steps.run(
            "Loading the images into the kind node",
            "kind-load",
            [["kind", "load", "docker-image", "--name", kube_plan.CLUSTER_NAME, *refs]],
        )

    @staticmethod
    def node_state() -> str:
        """The node container's state ("running", "exited", ...); "" when there is none."""
        return capture(
            ["docker", "ps", "-a", "--filter", f"name=^{NODE}$", "--format", "{{.State}}"]
        )

    def start_stopped_node(self, kubectl: Kubectl) -> None:
        """`down` stops the node container and keeps its data; start it again."""
        state = self.node_state()
        if not state or state == "running":
            return
        self.steps.run("Starting the stopped kind node", "kind-start", [["docker", "start", NODE]])
        # The API server needs a few seconds after the container starts; Helm would fail.
        try:
            poll(lambda: kubectl.reachable(timeout_s=5)[0], 180, every_s=2, tolerate=())
        except TimedOut:
            raise PlatformError(
                f"The kind node {NODE} started but its API did not answer within 180s.",
                hint=f"`docker logs {NODE}`; `mlops-lab clean` starts from scratch.",
            ) from None

    def stop_node(self) -> bool:
        if self.node_state() != "running":
            return False
        self.steps.run("Stopping the kind node", "kind-stop", [["docker", "stop", NODE]])
        return True

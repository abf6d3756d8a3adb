"""The kind runtime's own infrastructure: the two Terraform roots and the node container.

Each root keeps its state and provider plugins under ``<home>/kube/terraform`` (see
:class:`KubePaths`); the variables are generated from the settings on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_lab.runtime import ports
from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.kubectl import Kubectl
from mlops_lab.runtime.kube.plan import KubePaths
from mlops_lab.runtime.kube.steps import Steps, capture
from mlops_lab.runtime.services import by_name
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from platform_core.waiting import TimedOut, poll

NODE = f"{kube_plan.CLUSTER_NAME}-control-plane"
CLUSTER_RESOURCE = "kind_cluster.this"
# `docker stop`'s grace before SIGKILL: Docker's default 10 s kills every pod, Postgres mid-write.
STOP_GRACE_S = 60
# kind loads an image with `docker save | ctr images import`, which fails on Docker's containerd
# image store (kubernetes-sigs/kind#3795): the one setting to turn off, and where it is.
CONTAINERD_STORE_FIX = (
    "If the log says `ctr: content digest ... not found`, Docker keeps images in its containerd "
    "image store, which `kind load` cannot read. Turn it off, then run `mlops-lab up` again: "
    'Docker Desktop: Settings → General → untick "Use containerd for pulling and storing '
    'images"; Linux: `"features": {"containerd-snapshotter": false}` in /etc/docker/daemon.json, '
    "then `sudo systemctl restart docker`."
)


class KindCluster:
    def __init__(self, settings: Settings, paths: KubePaths, steps: Steps) -> None:
        self.settings = settings
        self.paths = paths
        self.steps = steps

    def provision(self, kubectl: Kubectl) -> Path:
        """Cluster, then the monitoring stack: two roots, each its own state. Returns the
        kubeconfig path (the cluster root's output)."""
        node_ports = kube_plan.read_node_ports()
        if self.node_state():
            self._require_own_node()
            self.start_stopped_node(kubectl)
        else:
            # A first run, or a node removed outside mlops-lab: kind will create one.
            self._forget_removed_node()
            self._require_free_ports(node_ports)
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

    def destroy(self) -> None:
        """The cluster root only, and both states deleted after it: the platform root's
        namespaces and Helm release live in the cluster and go with it. Without a refresh: the
        provider reads the kubeconfig inside the node, which fails on a node `down` stopped, and
        delete needs only the name and kubeconfig path the state holds. A node removed outside
        mlops-lab leaves nothing to destroy, whatever the state says."""
        if self.node_state() and self.paths.tfstate("cluster").exists():
            self.terraform(
                "cluster", "destroy", "Destroying the kind cluster (Terraform)", refresh=False
            )
        for root in ("cluster", "platform"):
            self.paths.tfstate(root).unlink(missing_ok=True)

    def _forget_removed_node(self) -> None:
        """A node removed outside mlops-lab (`docker system prune` after `down`, a Docker Desktop
        reset, `kind delete cluster`) is still in the cluster state, and the provider's refresh
        fails on it instead of dropping it: drop it, and the platform root's state whose objects
        were in that cluster."""
        if not kube_plan.state_holds(self.paths, "cluster", CLUSTER_RESOURCE):
            return
        self.steps.run(
            f"Forgetting the kind node removed outside mlops-lab ({NODE})",
            "terraform-cluster-forget",
            [
                kube_plan.terraform_init(self.paths, "cluster"),
                kube_plan.terraform_state_rm("cluster", CLUSTER_RESOURCE),
            ],
            env=kube_plan.terraform_env(self.paths, "cluster"),
        )
        self.paths.tfstate("platform").unlink(missing_ok=True)

    def _require_own_node(self) -> None:
        """A node this data dir's state does not hold would make kind refuse to create the
        cluster ("node(s) already exist"): say whose it may be and how to remove it."""
        if kube_plan.state_holds(self.paths, "cluster", CLUSTER_RESOURCE):
            return
        raise PlatformError(
            f"A kind node {NODE} exists, but {self.paths.tfstate('cluster')} does not hold it: "
            "a cluster left by an earlier run whose data dir was deleted, or another checkout's.",
            hint=f"`kind delete cluster --name {kube_plan.CLUSTER_NAME}` removes it and all its "
            "data; then run `mlops-lab up` again.",
        )

    def _require_free_ports(self, node_ports: dict[str, int]) -> None:
        """kind publishes every mapping on the host as it creates the node; a port another
        program holds would fail inside `terraform apply`, its reason buried in a log."""
        wanted = []
        for mapping in kube_plan.port_mappings(self.settings, node_ports):
            service = by_name(mapping["name"])
            wanted.append((mapping["host_port"], service.title, service.env_var()))
        taken = ports.conflicts(self.settings.host, wanted)
        if taken:
            raise PlatformError(
                "The kind cluster publishes each service on this machine, but:\n"
                + "\n".join(taken),
                hint="Nothing was created. Debian's prometheus packages hold 9090 and 9093 "
                "(`sudo systemctl disable --now prometheus prometheus-alertmanager`); macOS's "
                "AirPlay Receiver may hold 5000 (System Settings → General → AirDrop & Handoff).",
            )

    def terraform(self, root: str, action: str, title: str, refresh: bool = True) -> None:
        from monitoring.configs import grafana_admin_password

        env = kube_plan.terraform_env(self.paths, root)
        if root == "platform":
            # The same admin password as the local runtime's Grafana, never on a command line.
            env["TF_VAR_grafana_admin_password"] = grafana_admin_password(self.settings)
        self.steps.run(
            title,
            f"terraform-{root}-{action}",
            kube_plan.terraform_commands(self.paths, root, action, refresh=refresh),
            env=env,
            fix="Providers and charts are downloaded on the first run: check the network, then "
            "run `mlops-lab up` again (Terraform resumes where it stopped).",
        )

    def _write_tfvars(self, root: str, values: dict) -> None:
        path = self.paths.tfvars(root)
        self.paths.ensure()
        path.write_text(json.dumps(values, indent=2) + "\n")

    def load_images(self, refs: list[str]) -> None:
        self.steps.run(
            "Loading the images into the kind node",
            "kind-load",
            [["kind", "load", "docker-image", "--name", kube_plan.CLUSTER_NAME, *refs]],
            fix=CONTAINERD_STORE_FIX,
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
        self.steps.run(
            "Stopping the kind node",
            "kind-stop",
            [["docker", "stop", "-t", str(STOP_GRACE_S), NODE]],
        )
        return True

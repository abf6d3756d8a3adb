"""The Kubernetes runtimes: the same platform as Deployments in namespace ``mlops-lab``.

``kind``: Terraform creates a kind cluster (infra/terraform/cluster) whose NodePorts are published
on 127.0.0.1 at the local runtime's ports, then kube-prometheus-stack (infra/terraform/platform);
the images are built and loaded with `kind load`, the Secret generated, the overlay applied.
``kube``: any cluster the KUBECONFIG points at; no Terraform and no image loading (its nodes must
see this machine's images, or pull them), services reached through `kubectl port-forward`.
Both keep their state under ``<home>/kube`` and record themselves (selection.record).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from mlops_lab.runtime import selection
from mlops_lab.runtime.base import ProcessState, ServiceStatus, UpResult, tail
from mlops_lab.runtime.kube import forward as kube_forward
from mlops_lab.runtime.kube import host_processes, rollout
from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.kind import KindCluster
from mlops_lab.runtime.kube.kubectl import Kubectl
from mlops_lab.runtime.kube.plan import DEPLOYMENTS, KubePaths
from mlops_lab.runtime.kube.rollout import wait_rollouts
from mlops_lab.runtime.kube.steps import (
    DOCKER,
    KIND,
    KUBECTL,
    TERRAFORM,
    Steps,
    require_tools,
)
from mlops_lab.runtime.selection import RuntimeName, docker_engine_answers
from mlops_lab.runtime.services import SERVICES, by_name
from platform_core.errors import PlatformError
from platform_core.locks import platform_locked
from platform_core.probe import Health, probe, probe_all
from platform_core.settings import SERVICE_VARIABLE, Settings
from platform_core.waiting import TimedOut, poll

POSTGRES = "postgres"

MONITORING = ("prometheus", "alertmanager", "grafana")


# How long `status` asks a running Deployment again whose forward has yet to follow a rollout.
FORWARD_SETTLE_S = 10.0

# Set on a Deployment by set_override: which variables of its environment are overrides.
OVERRIDE_ANNOTATION = "mlops-lab/override"


class KubeRuntime:
    """The :class:`~mlops_lab.runtime.base.Runtime` of Deployments on a cluster."""

    def __init__(
        self,
        settings: Settings,
        runtime: RuntimeName = RuntimeName.kind,
        console: Console | None = None,
        overlay: Path | None = None,
        kubeconfig: Path | None = None,
        port_forward: bool = True,
    ) -> None:
        self.settings = settings
        self.name = runtime
        self.console = console or Console(stderr=True)
        self.paths = KubePaths(settings.home)
        record = selection.recorded(settings)
        self.overlay = Path(overlay or record.get("overlay") or kube_plan.K8S_DIR / "overlays/kind")
        if kubeconfig is None and runtime is RuntimeName.kube:
            env = os.environ.get("KUBECONFIG")
            kubeconfig = Path(record.get("kubeconfig") or env or Path.home() / ".kube/config")
        self.kubectl = Kubectl(kubeconfig or self.paths.kubeconfig)
        self.steps = Steps(self.console, settings.paths.logs)
        self.kind = KindCluster(settings, self.paths, self.steps)
        # kube runtime only: reach the Services through `kubectl port-forward` on the settings'
        # ports (off when the settings already point at the node's NodePorts).
        self.port_forward = port_forward and runtime is RuntimeName.kube

    # ---- up -------------------------------------------------------------------------------

    @platform_locked
    def up(self, force: bool = False) -> UpResult:
        """Everything from the cluster to the rollouts; Terraform and `kubectl apply` make each
        step a no-op when it is done. Without ``force``, a platform whose Deployments are all
        rolled out is left as it is (what a lab reset needs: quick, no rebuild)."""
        started = time.monotonic()
        if not force and self.all_rolled_out():
            return UpResult(True, [], time.monotonic() - started)
        self.require_tools()
        if self.name is RuntimeName.kube:
            self._require_reachable()
        self.settings.paths.ensure()
        self.paths.ensure()
        # Recorded before anything is created: a first `up` that fails half-way leaves a cluster
        # that `down` and `clean` must find (without a record they would take the local runtime).
        selection.record(
            self.settings, self.name, kubeconfig=self.kubectl.kubeconfig, overlay=self.overlay
        )
        if self.name is RuntimeName.kind:
            self._use(self.kind.provision(self.kubectl))
        if self.kubectl.namespace_terminating():
            self.console.print(
                f"Namespace {self.kubectl.namespace} is still being deleted (an earlier "
                "`clean`): waiting until it is gone"
            )
            self.kubectl.await_namespace_deleted(self._timeout())
        if self.name is RuntimeName.kube:
            self.kubectl.run("create", "namespace", self.kubectl.namespace, check=False)
        images = self._build_images()
        self._ensure_secret()
        self.apply()
        wait_rollouts(self.kubectl, DEPLOYMENTS, self._timeout(), self.console)
        if self.port_forward:
            self.ensure_forwards()
        self._wait_answering()
        self.console.print(f"Images: {', '.join(images.values())}", highlight=False)
        return UpResult(False, list(DEPLOYMENTS), time.monotonic() - started)

    def _wait_answering(self, timeout_s: float = 120.0) -> None:
        """Rolled out is not reachable: wait until each service answers at its host URL (a
        NodePort mapping or a port-forward), so every URL `up` prints works."""
        urls = {
            name: by_name(name).url(self.settings, by_name(name).health_path)
            for name in DEPLOYMENTS
            if name != "postgres"
        }
        failing: dict[str, str] = {}

        def all_answer() -> bool:
            nonlocal failing
            if self.port_forward:
                self.ensure_forwards()  # a forward dies when its first connection fails
            health = probe_all(urls)
            failing = {name: h.detail for name, h in health.items() if not h.healthy}
            return not failing

        try:
            poll(all_answer, timeout_s, every_s=2, tolerate=())
        except TimedOut:
            lines = [f"{name} at {urls[name]}: {why}" for name, why in failing.items()]
            raise PlatformError(
                "Rolled out, but not answering from this machine:\n" + "\n".join(lines),
                hint="kind: is another program on that port (`mlops-lab status`)? kube: see "
                f"{self.settings.paths.logs}/port-forward-*.log.",
            ) from None

    def all_rolled_out(self) -> bool:
        if selection.active(self.settings) is not self.name or not self.is_running():
            return False
        found = self.processes()
        return all(name in found and found[name].running for name in DEPLOYMENTS)

    def require_tools(self) -> None:
        tools = (
            [DOCKER, KIND, KUBECTL, TERRAFORM]
            if self.name is RuntimeName.kind
            else [KUBECTL, DOCKER]
        )
        require_tools(tools, self.name.value)
        engine_ok, reason = docker_engine_answers()
        if not engine_ok:
            raise PlatformError(
                f"The {self.name.value} runtime builds images with Docker, but {reason}.",
                hint="Start the Docker engine (`sudo systemctl start docker`), then run "
                "`mlops-lab up` again.",
            )

    def _use(self, kubeconfig: Path) -> None:
        self.kubectl = Kubectl(kubeconfig)

    def _build_images(self) -> dict[str, str]:
        self.steps.run(
            "Building the images (wheelhouse + docker build)",
            "build-images",
            [[str(kube_plan.BUILD_SCRIPT)]],
            fix="`make images` runs the same build and shows its output.",
        )
        refs = kube_plan.read_image_tags()
        if self.name is RuntimeName.kind:
            self.kind.load_images(list(refs.values()))
        return refs

    def _ensure_secret(self) -> None:
        """Generated once: kept if it exists, so a second `up` never changes the passwords."""
        if self.kubectl.exists("secret", kube_plan.SECRET_NAME):
            return
        self.kubectl.create(kube_plan.secret_manifest(kube_plan.secret_values()))
        self.console.print(f"Created Secret {kube_plan.SECRET_NAME} (generated credentials).")

    def apply(self) -> str:
        """Write the overlay with this build's image tags and `kubectl apply -k` it."""
        refs = kube_plan.read_image_tags()
        self.paths.overlay.mkdir(parents=True, exist_ok=True)
        text = kube_plan.overlay_kustomization(self.paths.overlay, self.overlay, refs)
        (self.paths.overlay / "kustomization.yaml").write_text(text)
        return self.kubectl.run("apply", "-k", str(self.paths.overlay), timeout_s=300).stdout

    def _require_reachable(self) -> None:
        ok, detail = self.kubectl.reachable()
        if not ok:
            raise PlatformError(
                f"No Kubernetes API answers with {self.kubectl.kubeconfig} ({detail}).",
                hint="Point KUBECONFIG at a running cluster, or use `--runtime kind`.",
            )

    def _timeout(self) -> float:
        # Image pulls and first starts on a cluster take longer than local processes.
        return max(600.0, self.settings.startup_timeout_s)

    # ---- access from the host -------------------------------------------------------------

    def forward_ports(self) -> dict[str, tuple[int, int]]:
        """Service → (host port from the settings, the Service's own port in the cluster)."""
        ports = {}
        for service in self.kubectl.items("services"):
            name = service["metadata"]["name"]
            if name in DEPLOYMENTS and name != "postgres":
                port = service["spec"]["ports"][0]["port"]
                ports[name] = (by_name(name).port(self.settings), port)
        return ports

    def ensure_forwards(self) -> list[str]:
        return kube_forward.ensure(
            self.kubectl,
            self.forward_ports(),
            self.settings.host,
            self.paths.forwards,
            self.settings.paths.logs,
        )

    def _rolled(self, deployments: tuple[str, ...]) -> None:
        """Wait for these rollouts, then start their port-forwards again: a forward is bound to
        one pod, so after a rollout the front end and the CLI would reach nothing through it."""
        wait_rollouts(self.kubectl, deployments, self._timeout(), self.console)
        if self.port_forward:
            kube_forward.stop(self.paths.forwards, deployments)
            self.ensure_forwards()
            time.sleep(1.0)  # a new forward needs a moment to listen

    def prediction_log_url(self) -> str:
        """The cluster's PostgreSQL, reached through a `kubectl port-forward` on a free local
        port (kind maps no port for it either), with the password from the platform's Secret.
        The URL is used in this process only: never printed, never written down."""
        import base64

        secret = self.kubectl.get("secret", kube_plan.SECRET_NAME)
        url = base64.b64decode(secret["data"]["prediction-log-url"]).decode()
        port = self._postgres_forward()
        return url.replace("@postgres:5432/", f"@127.0.0.1:{port}/")

    def _postgres_forward(self) -> int:
        from mlops_lab.runtime.ports import free_port, is_free

        record = self.paths.root / "postgres-forward-port"
        running = host_processes.running(self.paths.forwards)
        if POSTGRES in running and record.exists():
            return int(record.read_text())
        kube_forward.stop(self.paths.forwards, [POSTGRES])
        port = free_port("127.0.0.1")
        kube_forward.ensure(
            self.kubectl,
            {POSTGRES: (port, 5432)},
            "127.0.0.1",
            self.paths.forwards,
            self.settings.paths.logs,
        )
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(f"{port}\n")
        # Listening once the port can no longer be bound.
        poll(lambda: not is_free("127.0.0.1", port), 30, what="the port-forward to PostgreSQL")
        return port

    def reconnect(self) -> bool:
        """What the lab kit calls before it retries a refused request: True when a retry can
        succeed. kubectl ends a forward on a connection its pod refuses; its keeper starts it
        again, and a keeper that is gone is started here."""
        if not self.port_forward:
            return False
        self.ensure_forwards()
        time.sleep(1.0)  # a forward started again needs a moment to listen
        return True

    # ---- down / status / clean / logs -----------------------------------------------------

    @platform_locked
    def down(self) -> bool:
        """kind: stop the node container (every pod and volume is kept). kube: stop the
        port-forwards; the cluster is not ours to stop."""
        stopped = bool(self._stop_on_demand() + kube_forward.stop(self.paths.forwards))
        if self.name is RuntimeName.kind and shutil.which("docker"):
            stopped = self.kind.stop_node() or stopped
        return stopped

    @platform_locked
    def clean(self, wait: bool = True) -> bool:
        """Delete everything. kind: destroy the cluster root (the platform root's objects die
        with the cluster; its state goes with the data dir). kube: delete the namespace; without
        ``wait``, its pods go on terminating after this returns (a test that leaves the cluster
        to go on with other work does not wait for their grace periods)."""
        self._stop_on_demand()
        kube_forward.stop(self.paths.forwards)
        if self.name is RuntimeName.kind:
            self.kind.destroy()
        else:
            self.kubectl.run(
                "delete",
                "namespace",
                self.kubectl.namespace,
                "--ignore-not-found",
                f"--wait={str(wait).lower()}",
                timeout_s=300,
            )
        existed = self.settings.home.exists()
        if existed:
            shutil.rmtree(self.settings.home)
        return existed

    def status(self) -> list[ServiceStatus]:
        reachable, detail = self.kubectl.reachable(timeout_s=5)
        deployments = self.processes() if reachable else {}
        if reachable and self.port_forward:
            self.ensure_forwards()
        urls = {s.name: s.url(self.settings, s.health_path) for s in SERVICES}
        health = probe_all(urls)
        if self.port_forward:
            health |= self._probe_again_through_forwards(urls, health, deployments)
        rows = []
        for service in SERVICES:
            url = service.url(self.settings)
            answer = health[service.name]
            info = deployments.get(service.name)
            if service.name in MONITORING:
                kps = self.name is RuntimeName.kind or answer.healthy
                state = "kube-prometheus-stack" if kps else "not installed"
                why = answer.detail if kps else "install it with infra/terraform/platform"
                healthy = kps and answer.healthy
                rows.append(ServiceStatus(service.name, service.title, url, state, healthy, why))
            elif service.on_demand:
                on_host = service.name in host_processes.running(self.paths.on_demand)
                state = "running on this machine" if on_host else "on demand"
                healthy = on_host and answer.healthy
                why = answer.detail if on_host else "a lab starts it"
                rows.append(ServiceStatus(service.name, service.title, url, state, healthy, why))
            elif info is None:
                state = "missing" if reachable else "cluster down"
                why = detail if not reachable else f"no Deployment {service.name}"
                rows.append(ServiceStatus(service.name, service.title, url, state, False, why))
            else:
                healthy = answer.healthy and info.running
                state = info.description
                rows.append(
                    ServiceStatus(service.name, service.title, url, state, healthy, answer.detail)
                )
        return rows

    def _probe_again_through_forwards(
        self,
        urls: dict[str, str],
        health: dict[str, Health],
        deployments: Mapping[str, ProcessState],
    ) -> dict[str, Health]:
        """A rollout made outside the runtime (`kubectl rollout restart`) leaves a forward bound
        to the pod it replaced: the first request through it fails, kubectl ends the forward and
        its keeper starts it again on the new pod. A running Deployment that did not answer for
        want of a connection (not an HTTP error) is asked again for a few seconds."""
        again = {
            name: urls[name]
            for name, answer in health.items()
            if not answer.healthy
            and not answer.answered
            and (info := deployments.get(name)) is not None
            and info.running
        }
        answers: dict[str, Health] = {}
        deadline = time.monotonic() + FORWARD_SETTLE_S
        while again and time.monotonic() < deadline:
            time.sleep(0.5)
            answers |= probe_all(again)
            again = {name: url for name, url in again.items() if not answers[name].healthy}
        return answers

    def monitoring_installed(self) -> bool:
        """kind installs kube-prometheus-stack; a cluster the kube runtime reaches may not have
        it (then Prometheus, Alertmanager and Grafana show as not installed)."""
        if self.name is RuntimeName.kind:
            return True
        prometheus = by_name("prometheus")
        return probe(prometheus.url(self.settings, prometheus.health_path)).healthy

    def runs_on_host(self, service: str) -> bool:
        """Whether ``service`` runs on this machine (an on-demand service), not in the cluster:
        its log is a file, as on the local runtime."""
        return service in {s.name for s in SERVICES if s.on_demand}

    def log_path(self, name: str) -> Path:
        return self.settings.paths.log_file(name)

    @staticmethod
    def log_args(service: str, lines: int, follow: bool = False) -> list[str]:
        """`kubectl logs` of one Deployment (one of its pods: kubectl picks it)."""
        if service not in DEPLOYMENTS:
            known = ", ".join(DEPLOYMENTS)
            raise PlatformError(f"No Deployment named {service!r}.", hint=f"Known: {known}.")
        follow_args = ["--follow"] if follow else []
        return ["logs", f"deploy/{service}", "--all-containers", f"--tail={lines}", *follow_args]

    # ---- what the lab kit uses ------------------------------------------------------------

    def log_tail(self, name: str, lines: int) -> list[str]:
        if self.runs_on_host(name):
            return tail(self.log_path(name), lines)
        result = self.kubectl.run(*self.log_args(name, lines), check=False)
        return (result.stdout or result.stderr).splitlines()

    @platform_locked
    def restart(self, name: str, wait: bool = True) -> str:
        self.kubectl.run("rollout", "restart", f"deployment/{name}")
        if wait:
            self._rolled((name,))
        return "restarted"

    def restore_configs(self) -> list[str]:
        """Apply the overlay again: every Deployment a lab patched gets its manifest back."""
        output = self.apply()
        changed = [
            line.split()[0].split("/")[-1]
            for line in output.splitlines()
            if line.startswith("deployment.apps/") and line.rstrip().endswith("configured")
        ]
        if changed:
            self._rolled(tuple(changed))
        return changed

    # ---- on-demand services: on this machine, outside the cluster ------------------------

    def start_on_demand(self, name: str, timeout_s: float = 60.0) -> None:
        """Start an on-demand service (the front end) as a process on this machine. It stands
        for the outside world, so it reaches serving from outside the cluster, at the URL the
        CLI uses (a NodePort mapping or a port-forward), and reads its configuration file where
        the local runtime's does."""
        service = by_name(name)
        if not service.on_demand:
            raise PlatformError(f"{name} is not an on-demand service.", hint="`mlops-lab status`.")
        if name in host_processes.running(self.paths.on_demand):
            return
        if self.port_forward:
            self.ensure_forwards()
        self.settings.paths.ensure()
        env = {**os.environ, **self.settings.to_env(), SERVICE_VARIABLE: name}
        host_processes.start(
            self.paths.on_demand, name, service.command(self.settings), self.log_path(name), env
        )
        url = service.url(self.settings, service.health_path)
        health = Health(False, "not asked yet")

        def answers() -> bool:
            nonlocal health
            health = probe(url)
            if not health.healthy and name not in host_processes.running(self.paths.on_demand):
                raise PlatformError(
                    f"{service.title} exited at start: {health.detail}.",
                    hint=f"See its log: `mlops-lab logs {name}` ({self.log_path(name)}).",
                )
            return health.healthy

        try:
            poll(answers, timeout_s, every_s=0.5, tolerate=())
        except TimedOut:
            self.stop_on_demand(name)
            raise PlatformError(
                f"{service.title} did not answer at {url} within {timeout_s:.0f} s "
                f"({health.detail}).",
                hint=f"See its log: `mlops-lab logs {name}`.",
            ) from None

    def stop_on_demand(self, name: str) -> None:
        self._stop_on_demand([name])

    def _stop_on_demand(self, names: list[str] | None = None) -> list[str]:
        """Stop the on-demand services running on this machine (all, or ``names``)."""
        on_demand = [s for s in SERVICES if s.on_demand and (names is None or s.name in names)]
        return host_processes.stop(self.paths.on_demand, [s.name for s in on_demand])

    # ---- the Runtime's view of one service ------------------------------------------------

    def is_running(self) -> bool:
        ok, _ = self.kubectl.reachable(timeout_s=5)
        return ok and self.kubectl.exists("namespace", self.kubectl.namespace)

    def processes(self) -> dict[str, ProcessState]:
        return rollout.processes(self.kubectl)

    def stop(self, name: str) -> None:
        """Scale the Deployment to zero (`restore_configs` or `start` brings it back)."""
        self.kubectl.run("scale", f"deployment/{self._deployment(name)}", "--replicas=0")

    def start(self, name: str) -> None:
        deployment = self._deployment(name)
        self.kubectl.run("scale", f"deployment/{deployment}", "--replicas=1")
        self._rolled((deployment,))

    def _deployment(self, name: str) -> str:
        if name not in DEPLOYMENTS:
            known = ", ".join(DEPLOYMENTS)
            raise PlatformError(f"No Deployment named {name!r}.", hint=f"Known: {known}.")
        return name

    # ---- the two ways a lab changes the platform ------------------------------------------

    def set_override(self, name: str, values: Mapping[str, str], wait: bool = True) -> None:
        """The Deployment's own environment, which wins over the settings ConfigMap it also
        reads; the variables set are named in an annotation so `clear_overrides` finds them.
        Changing the pod template rolls the Deployment out."""
        deployment = self._deployment(name)
        keys = sorted(set(self._override_keys(deployment)) | set(values))
        pairs = [f"{key}={value}" for key, value in values.items()]
        self.kubectl.run("set", "env", f"deployment/{deployment}", *pairs)
        self.kubectl.run(
            "annotate",
            "--overwrite",
            f"deployment/{deployment}",
            f"{OVERRIDE_ANNOTATION}={','.join(keys)}",
        )
        if wait:
            self._rolled((deployment,))

    def _override_keys(self, deployment: str) -> list[str]:
        return _override_keys(self.kubectl.get("deployment", deployment))

    def clear_overrides(self) -> list[str]:
        cleared = []
        for deployment in self.kubectl.items("deployments"):
            keys = _override_keys(deployment)
            if not keys:
                continue
            name = deployment["metadata"]["name"]
            self.kubectl.run("set", "env", f"deployment/{name}", *(f"{key}-" for key in keys))
            self.kubectl.run("annotate", f"deployment/{name}", f"{OVERRIDE_ANNOTATION}-")
            cleared.append(name)
        if cleared:
            self._rolled(tuple(cleared))
        return cleared

    def reload(self, name: str) -> None:
        """kube-prometheus-stack's config reloader applies a changed rule or Alertmanager
        configuration by itself; the platform's own services read theirs at start: a rollout."""
        if name in MONITORING:
            return
        self.restart(name)


def _override_keys(deployment: dict) -> list[str]:
    """The variables of a Deployment's environment that `set_override` put there."""
    annotation = deployment["metadata"].get("annotations", {}).get(OVERRIDE_ANNOTATION, "")
    return [key for key in annotation.split(",") if key]

"""The Kubernetes runtimes' plan and errors, without a cluster: what `up --runtime kind` would
run and write, the overlay it applies (rendered by kubectl's kustomize), the Secret it creates,
the errors when a tool is missing, and the runtime record the CLI and the lab engine follow."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from mlops_lab.lab_engine import kube_kit
from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.engine import Engine
from mlops_lab.runtime import selection
from mlops_lab.runtime.kube import host_processes
from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.plan import KubePaths
from mlops_lab.runtime.kube.rollout import pod_problems, rollout
from mlops_lab.runtime.kube.runtime import KubeRuntime
from mlops_lab.runtime.selection import RuntimeName, choose
from platform_core.errors import PlatformError
from platform_core.settings import REPO_ROOT, Settings
from tests.support import make_settings, remove_platform_files, wait_for

KUBECTL = shutil.which("kubectl")


class _Loader(yaml.SafeLoader):
    """kustomize writes "=" unquoted (an AlertmanagerConfig matchType): YAML 1.1's "value" tag."""


_Loader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_scalar)


@pytest.fixture
def settings() -> Iterator[Settings]:
    settings = make_settings()
    yield settings
    remove_platform_files(settings)


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but what a test links there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_auto_picks_local_and_says_why_when_docker_is_absent(bare_path: Path) -> None:
    choice = choose(RuntimeName.auto)
    assert choice.runtime is RuntimeName.local
    assert "docker is not installed" in choice.reason


def test_kind_is_chosen_when_asked_for() -> None:
    assert choose(RuntimeName.kind).runtime is RuntimeName.kind
    assert choose(RuntimeName.kube).runtime is RuntimeName.kube


def test_kind_up_without_its_tools_names_each_and_the_way_out(
    settings: Settings, bare_path: Path
) -> None:
    with pytest.raises(PlatformError) as raised:
        KubeRuntime(settings, RuntimeName.kind).up(force=True)
    message = str(raised.value)
    for tool in ("docker", "kind", "kubectl", "terraform"):
        assert f"{tool} is not installed" in message
    assert "--runtime local" in message
    # Nothing was written: a failed check leaves no half-made platform behind.
    assert not KubePaths(settings.home).root.exists()


def test_runtime_record_round_trips_and_defaults_to_local(settings: Settings) -> None:
    assert selection.active(settings) is RuntimeName.local
    selection.record(settings, RuntimeName.kind, kubeconfig=settings.home / "kube" / "kubeconfig")
    assert selection.active(settings) is RuntimeName.kind
    assert selection.recorded(settings)["kubeconfig"].endswith("kube/kubeconfig")
    selection.forget(settings)
    assert selection.active(settings) is RuntimeName.local


def test_engine_follows_the_recorded_runtime_and_refuses_kubernetes_labs_locally(
    settings: Settings,
) -> None:
    engine = Engine(settings)
    assert engine.runtime == "local"
    with pytest.raises(PlatformError, match="needs the kind runtime"):
        engine.start(find("14"))
    selection.record(settings, RuntimeName.kube)
    assert Engine(settings).runtime == "kind"


def test_cluster_tfvars_map_the_settings_ports_to_the_manifests_node_ports(
    settings: Settings,
) -> None:
    node_ports = kube_plan.read_node_ports()
    values = kube_plan.cluster_tfvars(settings, KubePaths(settings.home), node_ports)
    mappings = {m["name"]: m for m in values["port_mappings"]}
    assert mappings["serving"]["host_port"] == settings.serving_port
    assert mappings["grafana"]["host_port"] == settings.grafana_port
    assert mappings["serving"]["node_port"] == node_ports["serving"]
    assert all(30000 <= m["node_port"] <= 32767 for m in mappings.values())
    assert len({m["node_port"] for m in mappings.values()}) == len(mappings)
    assert values["listen_address"] == "127.0.0.1"
    assert values["kubeconfig_path"].startswith(str(settings.home))


def test_node_ports_file_accepts_its_shapes_and_names_the_fix_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text(json.dumps([{"name": "serving", "host_port": 3000, "node_port": 30300}]))
    assert kube_plan.read_node_ports(path) == {"serving": 30300}
    path.write_text(json.dumps({"serving": {"nodePort": 30300}}))
    assert kube_plan.read_node_ports(path) == {"serving": 30300}
    with pytest.raises(PlatformError, match="make k8s-assets"):
        kube_plan.read_node_ports(tmp_path / "absent.json")


def test_terraform_keeps_state_and_plugins_in_the_platform_home(settings: Settings) -> None:
    paths = KubePaths(settings.home)
    init, apply = kube_plan.terraform_commands(paths, "cluster", "apply")
    assert f"-backend-config=path={paths.tfstate('cluster')}" in init
    assert apply[2:4] == ["apply", "-auto-approve"]
    assert f"-var-file={paths.tfvars('cluster')}" in apply
    env = kube_plan.terraform_env(paths, "platform")
    assert env["TF_DATA_DIR"].startswith(str(settings.home))


def test_secret_is_fresh_each_install_and_holds_every_key_the_manifests_read() -> None:
    first, second = kube_plan.secret_values(), kube_plan.secret_values()
    assert first["postgres-password"] != second["postgres-password"]
    assert first["postgres-password"] in first["prediction-log-url"]
    referenced = set()
    for manifest in (REPO_ROOT / "k8s" / "base").glob("*.yaml"):
        for document in yaml.safe_load_all(manifest.read_text()):
            text = json.dumps(document)
            for match in re.finditer(
                r'"secretKeyRef": \{"name": "([^"]+)", "key": "([^"]+)"', text
            ):
                assert match[1] == kube_plan.SECRET_NAME
                referenced.add(match[2])
    assert referenced, "no manifest reads the Secret: the check would be empty"
    assert referenced <= set(first), f"keys the runtime does not create: {referenced - set(first)}"
    manifest = kube_plan.secret_manifest(first)
    assert manifest["metadata"]["name"] == kube_plan.SECRET_NAME


@pytest.mark.skipif(KUBECTL is None, reason="kubectl renders the overlay (kubectl kustomize)")
def test_generated_overlay_renders_the_kind_overlay_with_the_build_tags(tmp_path: Path) -> None:
    refs = {name: f"{name}:0123abcd4567" for name in kube_plan.IMAGES}
    overlay = tmp_path / "kube" / "overlay"
    overlay.mkdir(parents=True)
    source = kube_plan.K8S_DIR / "overlays" / "kind"
    text = kube_plan.overlay_kustomization(overlay, source, refs)
    (overlay / "kustomization.yaml").write_text(text)
    assert KUBECTL is not None  # the skipif above, for the type checker
    result = subprocess.run(
        [KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    images = set()
    for document in yaml.load_all(result.stdout, Loader=_Loader):
        spec = (document or {}).get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            images.add(container["image"])
            assert container.get("imagePullPolicy") == "IfNotPresent", container["name"]
    assert images and images <= set(refs.values()), images


def test_rollout_is_complete_only_when_every_replica_is_new_and_available() -> None:
    deployment = {
        "metadata": {"generation": 3},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 1,
            "availableReplicas": 1,
        },
    }
    assert rollout(deployment)[0] is False  # the old pod is still there
    deployment["status"]["replicas"] = 1
    assert rollout(deployment) == (True, "1/1 ready")
    deployment["metadata"]["generation"] = 4  # a patch the controller has not seen yet
    assert rollout(deployment)[0] is False


def test_pod_problems_name_the_waiting_reason_and_the_last_exit() -> None:
    pods = [
        {
            "metadata": {"labels": {"app.kubernetes.io/name": "serving"}},
            "status": {
                "containerStatuses": [
                    {
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"reason": "OOMKilled"}},
                    }
                ]
            },
        },
        {
            "metadata": {"labels": {"app.kubernetes.io/name": "mlflow"}},
            "status": {
                "containerStatuses": [
                    {"state": {"running": {}}, "lastState": {"terminated": {"reason": "Error"}}}
                ]
            },
        },
    ]
    assert pod_problems(pods) == {"serving": "CrashLoopBackOff", "mlflow": "last exit: Error"}


def test_oom_kills_before_the_fix_do_not_count_against_it() -> None:
    pod = {
        "metadata": {"name": "serving-1"},
        "status": {
            "containerStatuses": [
                {
                    "lastState": {
                        "terminated": {"reason": "OOMKilled", "finishedAt": "2026-11-30T10:00:00Z"}
                    }
                }
            ]
        },
    }
    before, after = 1_796_032_000.0, 1_796_033_000.0  # 09:46:40 and 10:03:20 UTC
    assert kube_kit.oom_killed([pod], since=before) == ["serving-1"]
    assert kube_kit.oom_killed([pod], since=after) == []
    assert kube_kit.memory_bytes("1536Mi") == 1536 * 2**20
    assert kube_kit.memory_bytes("1G") == 1e9


def test_a_container_is_found_by_name_in_a_deployment_and_in_a_pod() -> None:
    sidecar = {"name": "log-shipper", "resources": {}}
    serving = {"name": "serving", "resources": {"limits": {"memory": "128Mi"}}}
    spec = {"containers": [sidecar, serving]}
    deploy = {"kind": "Deployment", "metadata": {"name": "serving"}}
    deploy["spec"] = {"template": {"spec": spec}}
    pod = {"kind": "Pod", "metadata": {"name": "serving-1"}, "spec": spec}

    assert kube_kit.container(deploy) is serving
    assert kube_kit.pod_container(pod) is serving
    # The pointer a JSON patch takes: the container's index, not a guess of 0.
    assert kube_kit.container_path(deploy) == "/spec/template/spec/containers/1"
    with pytest.raises(PlatformError, match="Pod serving-1 has no container 'model'"):
        kube_kit.pod_container(pod, "model")


def test_image_build_without_a_docker_engine_says_so(bare_path: Path) -> None:
    for tool in ("bash", "dirname", "git", "sha256sum", "cut", "sort", "xargs"):
        found = shutil.which(tool, path=os.defpath + ":/usr/bin:/bin")
        if found:
            (bare_path / tool).symlink_to(found)
    result = subprocess.run(
        [str(kube_plan.BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER": str(bare_path / "docker")},
    )
    assert result.returncode == 1
    assert "No Docker engine answers" in result.stderr


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is what asks the cluster")
def test_status_without_a_cluster_says_the_cluster_is_down(
    settings: Settings, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    runtime = KubeRuntime(settings, RuntimeName.kube, kubeconfig=kubeconfig)
    rows = {row.name: row for row in runtime.status()}
    assert rows["serving"].state == "cluster down"
    assert not rows["serving"].healthy
    assert "127.0.0.1:1" in rows["serving"].detail, rows["serving"].detail
    assert not runtime.is_running()


def test_the_front_end_runs_on_this_machine_beside_a_cluster(settings: Settings) -> None:
    """On a cluster the front end is a process on the host, as the outside world is: a lab starts
    it, `status` and `logs` show it, and stopping it stops only it. (No cluster is needed for
    that: kind's settings point at 127.0.0.1, where nothing serves, and the front end still
    answers its health check while its requests fail.)"""
    runtime = KubeRuntime(settings, RuntimeName.kind)
    runtime.start_on_demand("front-end")
    try:
        pid = host_processes.running(runtime.paths.on_demand)["front-end"]
        rows = {row.name: row for row in runtime.status()}
        assert rows["front-end"].state == "running on this machine", rows["front-end"]
        assert rows["front-end"].healthy, rows["front-end"].detail
        runtime.start_on_demand("front-end")  # already running: left alone
        assert host_processes.running(runtime.paths.on_demand)["front-end"] == pid
        assert runtime.runs_on_host("front-end") and not runtime.runs_on_host("serving")
        assert any("front_end" in line for line in runtime.log_tail("front-end", 50))
    finally:
        runtime.stop_on_demand("front-end")
    assert not runtime.paths.on_demand.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    rows = {row.name: row for row in runtime.status()}
    assert rows["front-end"].state == "on demand"
    with pytest.raises(PlatformError, match="not an on-demand service"):
        runtime.start_on_demand("serving")


def test_stopping_host_processes_spares_a_reused_pid(tmp_path: Path) -> None:
    """A recorded PID that now belongs to another process is not killed: the record's start
    time is not that process's."""
    record = tmp_path / "pids.json"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    pid = host_processes.start(record, "sleeper", sleeper, tmp_path / "sleeper.log")
    try:
        entries = json.loads(record.read_text())
        entries["sleeper"][1] -= 3600.0  # recorded an hour before this process started
        record.write_text(json.dumps(entries))
        assert host_processes.running(record) == {}
        assert host_processes.stop(record) == []
        assert host_processes.alive(pid)
        assert not record.exists()
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_host_process_stopped_right_after_its_start_is_stopped(tmp_path: Path) -> None:
    """Stopped the moment it starts (its command line can still read empty then), a process is
    stopped all the same."""
    record = tmp_path / "pids.json"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    for attempt in range(20):
        pid = host_processes.start(record, "sleeper", sleeper, tmp_path / "sleeper.log")
        try:
            assert host_processes.stop(record, grace_s=5.0) == ["sleeper"], attempt
            assert not host_processes.alive(pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_kept_forward_comes_back_after_it_exits_and_stops_with_its_keeper(
    tmp_path: Path,
) -> None:
    """kubectl ends a port-forward on the first connection its pod refuses; every later request
    from this machine was refused until something called `status` (a training run failed). The
    keeper starts it again; stopping the keeper stops what it runs. An HTTP server on a free
    port stands for the forward here."""
    import httpx

    from mlops_lab.runtime.ports import free_port

    port = free_port("127.0.0.1")
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    keeper = [sys.executable, "-m", "mlops_lab.runtime.kube.keep_forward", *server]
    record = tmp_path / "forwards.json"
    pid = host_processes.start(record, "serving", keeper, tmp_path / "forward.log")
    url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 30, interval_s=0.2, what="the kept server")
        for _ in range(2):
            (child,) = psutil.Process(pid).children()
            child.kill()  # as kubectl ends a forward
            child.wait(5)
            wait_for(answers, 10, interval_s=0.2, what="the server started again")
        assert "the forward exited" in (tmp_path / "forward.log").read_text()
        (child,) = psutil.Process(pid).children()
    finally:
        assert host_processes.stop(record, grace_s=10.0) == ["serving"]
    assert not host_processes.alive(pid) and not host_processes.alive(child.pid)
    assert not answers()

"""The kind runtime's lifecycle without a download: `up`, a failed `up`, `down`, `clean`, a second
`up` and a taken port, through the real :class:`KubeRuntime` (and the CLI where it is cheap),
against stand-ins for docker, kind, terraform and kubectl (tests/infra/standins/) that answer in
the real tools' formats and fail as they do. The real cluster is tests/k8s/test_cluster_e2e.py's;
these cover the paths a real run seldom takes: a node stopped or removed by hand, a failed first
`up`, a port another program holds. Nothing here starts a service."""

from __future__ import annotations

import io
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from mlops_lab.runtime import ports, selection
from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.kind import NODE
from mlops_lab.runtime.kube.plan import DEPLOYMENTS, KubePaths
from mlops_lab.runtime.kube.runtime import KubeRuntime
from mlops_lab.runtime.selection import RuntimeName
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.infra.standins import BUILT_IMAGES, Sandbox
from tests.support import PORT_SETTINGS, free_ports, run_cli


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = Sandbox(tmp_path)
    box.install(("docker", "kind", "terraform", "kubectl", "build-images"))
    box.update(overlay_deployments=list(DEPLOYMENTS))
    monkeypatch.setenv("PATH", f"{box.bin}{os.pathsep}{os.environ['PATH']}")
    # The image build has tests of its own (tests/infra/test_build_images.py); here it is a
    # stand-in that leaves the images in the stand-in engine, for `kind load` to find.
    monkeypatch.setattr(kube_plan, "BUILD_SCRIPT", box.bin / "build-images")
    monkeypatch.setattr(kube_plan, "read_image_tags", lambda *_: dict(BUILT_IMAGES))
    # Rolled out is as far as stand-ins go: nothing answers HTTP on the settings' ports (the real
    # cluster's answers are test_cluster_e2e.py's).
    monkeypatch.setattr(KubeRuntime, "_wait_answering", lambda self, timeout_s=120.0: None)
    return box


def _settings(home: Path, learner_home: Path) -> Settings:
    """Every port free, no .env read (`_env_file`: pydantic-settings', unseen by pyright)."""
    ports = dict(zip(PORT_SETTINGS, free_ports(len(PORT_SETTINGS)), strict=True))
    return Settings(_env_file=None, home=home, learner_home=learner_home, **ports)  # pyright: ignore[reportCallIssue]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Every path inside the sandbox: the stand-ins write nowhere else."""
    return _settings(tmp_path / "home", tmp_path / "learner")


def _runtime(settings: Settings) -> KubeRuntime:
    return KubeRuntime(settings, RuntimeName.kind, console=Console(file=io.StringIO()))


def _node_state(box: Sandbox) -> str:
    node = box.world()["containers"].get(NODE)
    return node["state"] if node else ""


def _terraform(box: Sandbox, root: str, action: str) -> list[list[str]]:
    """The calls of ``terraform -chdir=.../<root> <action> ...``."""
    return [a for a in box.calls("terraform") if a[0].endswith(f"/{root}") and a[1] == action]


def _remove_node_by_hand(box: Sandbox) -> None:
    """What `docker system prune` after `down`, or `kind delete cluster`, leaves."""
    subprocess.run([str(box.bin / "docker"), "rm", "-f", NODE], check=True, capture_output=True)


# ---- up, down, up, clean ------------------------------------------------------------------------


def test_first_up_creates_the_cluster_installs_the_stack_and_loads_the_images(
    sandbox: Sandbox, settings: Settings
) -> None:
    _runtime(settings).up(force=True)
    assert _node_state(sandbox) == "running"
    assert _terraform(sandbox, "cluster", "apply") and _terraform(sandbox, "platform", "apply")
    (load,) = sandbox.calls("kind")
    assert load[:4] == ["load", "docker-image", "--name", kube_plan.CLUSTER_NAME]
    assert set(load[4:]) == set(BUILT_IMAGES.values())
    assert set(sandbox.world()["deployments"]) == set(DEPLOYMENTS)
    assert selection.active(settings) is RuntimeName.kind


def test_second_up_after_down_starts_the_stopped_node_and_keeps_it(
    sandbox: Sandbox, settings: Settings
) -> None:
    runtime = _runtime(settings)
    runtime.up(force=True)
    assert runtime.down()
    assert _node_state(sandbox) == "exited"
    _runtime(settings).up(force=True)
    assert _node_state(sandbox) == "running"
    assert ["start", NODE] in sandbox.calls("docker")
    assert len(_terraform(sandbox, "cluster", "apply")) == 2


def test_down_gives_the_node_a_minute_to_stop_its_pods(
    sandbox: Sandbox, settings: Settings
) -> None:
    """Docker's default 10 s ends in SIGKILL for every pod; Postgres wants a clean shutdown."""
    runtime = _runtime(settings)
    runtime.up(force=True)
    runtime.down()
    assert ["stop", "-t", "60", NODE] in sandbox.calls("docker")


def test_clean_destroys_only_the_cluster_root_and_drops_the_platform_state(
    sandbox: Sandbox, settings: Settings
) -> None:
    """The platform's objects die with the cluster: destroying them first is a failure point."""
    runtime = _runtime(settings)
    runtime.up(force=True)
    assert runtime.clean()
    assert _terraform(sandbox, "cluster", "destroy")
    assert not _terraform(sandbox, "platform", "destroy")
    assert _node_state(sandbox) == ""
    assert not settings.home.exists()


# ---- the paths a real run seldom takes --------------------------------------------------------


def test_failed_first_up_leaves_down_and_clean_able_to_remove_the_cluster(
    sandbox: Sandbox, settings: Settings
) -> None:
    """Through the CLI, as a learner meets it: the Helm install times out after the cluster
    exists; `down` must stop its node and `clean` must destroy it, not fall back to local."""
    sandbox.fail("terraform", "platform apply", "Error: context deadline exceeded")
    up = run_cli(settings, "up", "--runtime", "kind", timeout=120)
    assert up.returncode != 0 and "context deadline exceeded" in up.stderr
    assert _node_state(sandbox) == "running"
    down = run_cli(settings, "down", timeout=120)
    assert down.returncode == 0 and _node_state(sandbox) == "exited", down.stderr
    clean = run_cli(settings, "clean", "--yes", timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert _node_state(sandbox) == "", "clean left the kind node behind"


def test_clean_after_down_destroys_the_stopped_cluster(
    sandbox: Sandbox, settings: Settings
) -> None:
    runtime = _runtime(settings)
    runtime.up(force=True)
    runtime.down()
    assert runtime.clean()
    assert _node_state(sandbox) == ""
    assert not settings.home.exists()


def test_clean_after_the_node_was_removed_by_hand_succeeds(
    sandbox: Sandbox, settings: Settings
) -> None:
    runtime = _runtime(settings)
    runtime.up(force=True)
    _remove_node_by_hand(sandbox)
    assert runtime.clean()
    assert not settings.home.exists()


def test_up_after_the_node_was_removed_by_hand_creates_a_new_cluster(
    sandbox: Sandbox, settings: Settings
) -> None:
    _runtime(settings).up(force=True)
    _remove_node_by_hand(sandbox)
    _runtime(settings).up(force=True)
    assert _node_state(sandbox) == "running"
    assert any(
        argv[1:4] == ["state", "rm", "kind_cluster.this"] for argv in sandbox.calls("terraform")
    )
    assert len(_terraform(sandbox, "platform", "apply")) == 2


def test_up_refuses_a_node_the_data_dir_does_not_hold_and_says_how_to_remove_it(
    sandbox: Sandbox, settings: Settings
) -> None:
    """A cluster left by a run whose data dir was deleted (or another checkout's)."""
    sandbox.update(containers={NODE: {"state": "running", "ports": []}})
    with pytest.raises(PlatformError) as raised:
        _runtime(settings).up(force=True)
    assert f"kind delete cluster --name {kube_plan.CLUSTER_NAME}" in (raised.value.hint or "")
    assert not _terraform(sandbox, "cluster", "apply")


def test_relative_data_dir_reaches_terraform_as_an_absolute_path(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLOPS_LAB_HOME=./.lab, as the README shows: Terraform runs with -chdir=infra/terraform/...,
    so a relative state, data dir or kubeconfig path would land there, not in the data dir."""
    monkeypatch.chdir(tmp_path)
    settings = _settings(Path(".lab"), Path(".learner"))
    _runtime(settings).up(force=True)
    assert (tmp_path / ".lab" / "kube" / "kubeconfig").is_file()
    assert (tmp_path / ".lab" / "kube" / "terraform" / "cluster.tfstate").is_file()


def test_kube_paths_of_a_relative_data_dir_are_absolute() -> None:
    paths = KubePaths(Path(".lab"))
    for path in (paths.kubeconfig, paths.tfstate("cluster"), paths.terraform_data("platform")):
        assert path.is_absolute(), path
    init, apply = kube_plan.terraform_commands(paths, "cluster", "apply")
    assert all(Path(arg.split("=")[-1]).is_absolute() for arg in (init[-1], apply[-1]))


@pytest.fixture
def held_port(settings: Settings) -> Iterator[int]:
    """MLflow's port, held by this test's process as another program would hold it."""
    with socket.socket() as sock:
        sock.bind((settings.host, settings.mlflow_port))
        sock.listen()
        yield settings.mlflow_port


def test_taken_port_stops_up_before_terraform_and_names_its_holder(
    sandbox: Sandbox, settings: Settings, held_port: int
) -> None:
    with pytest.raises(PlatformError) as raised:
        _runtime(settings).up(force=True)
    message = str(raised.value)
    assert f"{held_port}" in message and "MLflow" in message
    # This process, by name and pid where the OS shows them (macOS shows other users' to root only).
    assert ports.owner(held_port).describe() in message
    assert "MLOPS_LAB_MLFLOW_PORT" in message
    assert not _terraform(sandbox, "cluster", "apply"), "Terraform ran with a port taken"


def test_ports_are_not_checked_while_the_node_exists(sandbox: Sandbox, settings: Settings) -> None:
    """A running node holds the ports itself (docker-proxy): a second `up` must not refuse."""
    _runtime(settings).up(force=True)
    with socket.socket() as sock:
        sock.bind((settings.host, settings.mlflow_port))
        sock.listen()
        _runtime(settings).up(force=True)
    assert len(_terraform(sandbox, "cluster", "apply")) == 2


def test_failed_image_load_names_the_containerd_image_store_setting(
    sandbox: Sandbox, settings: Settings
) -> None:
    sandbox.update(containerd_store=True)
    with pytest.raises(PlatformError) as raised:
        _runtime(settings).up(force=True)
    assert "ctr: content digest" in raised.value.message
    hint = raised.value.hint or ""
    assert "Use containerd for pulling and storing images" in hint
    assert '"containerd-snapshotter": false' in hint and "/etc/docker/daemon.json" in hint

"""Choosing a runtime (kind when Docker and the Kubernetes tools are there, else local), and
remembering which one runs, so `status`, `down`, `logs` and the lab engine talk to it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from platform_core import state_file
from platform_core.settings import Settings

KIND_TOOLS = ("kind", "kubectl", "terraform")


class RuntimeName(StrEnum):
    auto = "auto"
    local = "local"
    kind = "kind"
    # Any cluster a KUBECONFIG points at: no Terraform, no kind (see infra/terraform/README.md).
    kube = "kube"


class RuntimeUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Choice:
    runtime: RuntimeName
    reason: str


def docker_engine_answers(timeout_s: float = 5.0) -> tuple[bool, str]:
    docker = shutil.which("docker")
    if docker is None:
        return False, "docker is not installed"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"the Docker engine did not answer within {timeout_s:.0f}s"
    if result.returncode != 0:
        return False, "the docker client is installed but no Docker engine answers"
    return True, f"Docker engine {result.stdout.strip()} answers"


def choose(requested: RuntimeName) -> Choice:
    if requested is RuntimeName.local:
        return Choice(RuntimeName.local, "requested with --runtime local")
    if requested in (RuntimeName.kind, RuntimeName.kube):
        return Choice(requested, f"requested with --runtime {requested.value}")

    engine_ok, engine_reason = docker_engine_answers()
    if not engine_ok:
        return Choice(RuntimeName.local, f"{engine_reason}, so the kind runtime cannot run")
    missing = [tool for tool in KIND_TOOLS if shutil.which(tool) is None]
    if missing:
        return Choice(RuntimeName.local, f"{engine_reason} but {', '.join(missing)} not installed")
    return Choice(
        RuntimeName.kind, f"{engine_reason} and kind, kubectl and terraform are installed"
    )


def _record_path(settings: Settings):
    return settings.home / "runtime.json"


WHAT = "which runtime `up` started"
# Read as local when unreadable: `clean` still works, but a cluster it named is not reached.
LOST_RECORD_HINT = (
    "If the platform ran on kind or kube, `mlops-lab up --runtime kind` (or kube) records it "
    "again, so that `down` and `clean` reach the cluster."
)


def record(settings: Settings, runtime: RuntimeName, **details: Any) -> None:
    """Remember the runtime `up` started (and what it needs to find it again: kubeconfig...)."""
    data = {"runtime": runtime.value, **{k: str(v) for k, v in details.items()}}
    state_file.write_json(_record_path(settings), data)


def recorded(settings: Settings) -> dict[str, str]:
    """What `up` recorded; a platform home without a record (or with one that cannot be read,
    set aside with a warning) is the local runtime's."""
    path = _record_path(settings)
    data = state_file.read_json(path, dict, WHAT, LOST_RECORD_HINT)
    if data is None:
        return {"runtime": RuntimeName.local.value}
    runtimes = [name.value for name in RuntimeName if name is not RuntimeName.auto]
    if data.get("runtime") in runtimes and all(isinstance(v, str) for v in data.values()):
        return data
    problem = f"it is not a record `up` writes (a runtime of {', '.join(runtimes)}; text only)"
    state_file.set_aside(path, WHAT, problem, LOST_RECORD_HINT)
    return {"runtime": RuntimeName.local.value}


def active(settings: Settings) -> RuntimeName:
    return RuntimeName(recorded(settings)["runtime"])


def forget(settings: Settings) -> None:
    _record_path(settings).unlink(missing_ok=True)

"""Choosing a runtime: kind when Docker and the Kubernetes tools are there, else local."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum


class RuntimeName(StrEnum):
    auto = "auto"
    local = "local"
    kind = "kind"


class RuntimeUnavailable(RuntimeError):
    pass


KIND_NOT_READY = (
    "The kind runtime is not part of this version of mlops-lab yet: only the embedded local "
    "runtime can start the platform. Run `mlops-lab up --runtime local` (the default on "
    "machines without Docker)."
)
# Until the kind runtime lands, `auto` must still start something that works.
KIND_RUNTIME_AVAILABLE = False


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
    if requested is RuntimeName.kind:
        if not KIND_RUNTIME_AVAILABLE:
            raise RuntimeUnavailable(KIND_NOT_READY)
        return Choice(RuntimeName.kind, "requested with --runtime kind")

    engine_ok, engine_reason = docker_engine_answers()
    if not engine_ok:
        return Choice(RuntimeName.local, f"{engine_reason}, so the kind runtime cannot run")
    missing = [tool for tool in ("kind", "kubectl", "terraform") if shutil.which(tool) is None]
    if missing:
        return Choice(RuntimeName.local, f"{engine_reason} but {', '.join(missing)} not installed")
    if not KIND_RUNTIME_AVAILABLE:
        return Choice(
            RuntimeName.local,
            f"{engine_reason} and kind, kubectl and terraform are installed, but the kind runtime "
            "is not part of this version yet",
        )
    return Choice(
        RuntimeName.kind, f"{engine_reason} and kind, kubectl and terraform are installed"
    )

"""The runtime the platform home says is running: what `status`, `down`, `logs` and labs talk to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr
from rich.console import Console

from mlops_lab.runtime import selection
from mlops_lab.runtime.base import Runtime
from mlops_lab.runtime.kube import host_processes
from mlops_lab.runtime.kube.plan import KubePaths
from mlops_lab.runtime.kube.runtime import KubeRuntime
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.selection import RuntimeName
from platform_core.settings import ENV_PREFIX, Settings


def runtime_for(settings: Settings, console: Console | None = None) -> Runtime:
    name = selection.active(settings)
    if name is RuntimeName.local:
        return LocalRuntime(settings, console=console)
    return KubeRuntime(settings, name, console=console)


def is_kubernetes(settings: Settings) -> bool:
    return selection.active(settings) in (RuntimeName.kind, RuntimeName.kube)


@contextmanager
def prediction_log_in_reach(settings: Settings, runtime: Runtime) -> Iterator[Settings]:
    """Settings whose prediction log is the one the platform writes, for work this process does
    on it (a retrain run here, a drift check here): on a cluster its PostgreSQL through a
    port-forward, not this machine's default file, which no pod writes. A flow run here reads
    its settings from the environment, so the URL is there too while this lasts. It carries a
    password: it stays in this process, never printed, never written down."""
    if not is_kubernetes(settings):
        yield settings
        return
    url = runtime.prediction_log_url()
    name = f"{ENV_PREFIX}PREDICTION_LOG_URL"
    before = os.environ.get(name)
    os.environ[name] = url
    try:
        # model_copy does not validate: the field takes a SecretStr, not a str.
        yield settings.model_copy(update={"prediction_log_url": SecretStr(url)})
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def carry_over_old_names(settings: Settings) -> list[str]:
    """Move what an earlier release named otherwise in the data dir (files, and the record of a
    front end running beside a cluster) to its name now. Returns what moved, in words."""
    moves = [f"{old} -> {new}" for old, new in settings.paths.carry_over_old_names()]
    record = KubePaths(settings.home).on_demand
    if record.exists() and host_processes.rename(record, "client-app", "front-end"):
        moves.append(f"{record}: client-app -> front-end")
    return moves

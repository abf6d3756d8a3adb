"""The runtime the platform home says is running: what `status`, `down`, `logs` and labs talk to."""

from __future__ import annotations

from rich.console import Console

from mlops_lab.core.settings import Settings
from mlops_lab.runtime import selection
from mlops_lab.runtime.kube import KubeRuntime
from mlops_lab.runtime.local import LocalRuntime
from mlops_lab.runtime.selection import RuntimeName


def runtime_for(settings: Settings, console: Console | None = None) -> LocalRuntime | KubeRuntime:
    name = selection.active(settings)
    if name is RuntimeName.local:
        return LocalRuntime(settings, console=console)
    return KubeRuntime(settings, name, console=console)


def is_kubernetes(settings: Settings) -> bool:
    return selection.active(settings) in (RuntimeName.kind, RuntimeName.kube)

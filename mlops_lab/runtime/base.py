"""What every runtime offers: the :class:`Runtime` interface that the CLI, the lab engine and the
labs use, and the neutral types both runtimes produce.

The local runtime (``runtime/local``: processes kept by supervisord) and the Kubernetes runtimes
(``runtime/kube``: Deployments) implement it; neither imports the other. A lab changes the
platform in two ways only, and both go through here: a service's configuration override
(:meth:`Runtime.set_override`) and a reload of a service's configuration (:meth:`Runtime.reload`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from mlops_lab.runtime.selection import RuntimeName
from platform_core.settings import Settings


@dataclass(frozen=True)
class ServiceStatus:
    """One row of `mlops-lab status`."""

    name: str
    title: str
    url: str
    state: str
    healthy: bool
    detail: str
    pid: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class UpResult:
    already_running: bool
    started: list[str]
    seconds: float


class State(StrEnum):
    """Where a service's process (or Deployment) is, in words both runtimes share."""

    running = "running"
    starting = "starting"
    stopped = "stopped"
    failed = "failed"
    unknown = "unknown"


@dataclass(frozen=True)
class ProcessState:
    """A service's process as the runtime keeps it: locally a supervisord program, on a cluster a
    Deployment. ``started_at`` is when the current process (or rollout) started, in epoch
    seconds; ``restarts`` counts restarts where the runtime counts them; ``pid`` exists locally."""

    name: str
    state: State
    description: str
    started_at: float | None = None
    restarts: int | None = None
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state is State.running


def not_running(name: str) -> ProcessState:
    """What a service the runtime does not know (or cannot reach) looks like."""
    return ProcessState(name, State.unknown, "not running")


class Runtime(Protocol):
    """The platform as one runtime runs it."""

    name: RuntimeName
    settings: Settings

    # ---- the whole platform ---------------------------------------------------------------

    def up(self) -> UpResult:
        """Start everything and wait until it is healthy; a no-op for what already runs."""
        ...

    def down(self) -> bool:
        """Stop everything, keep the data. Returns whether anything was running."""
        ...

    def clean(self) -> bool:
        """Stop everything and delete the platform's data. Returns whether there was any."""
        ...

    def status(self) -> list[ServiceStatus]: ...

    def is_running(self) -> bool:
        """Whether the runtime itself answers (supervisord; the cluster's API and namespace)."""
        ...

    def monitoring_installed(self) -> bool:
        """Whether this platform has a Prometheus to ask."""
        ...

    def prediction_log_url(self) -> str:
        """Where this machine reads the prediction log (holds a password on a cluster: use it,
        never show it)."""
        ...

    def reconnect(self) -> bool:
        """Re-establish the host's way into the services if it broke (a port-forward bound to a
        replaced pod). Returns whether a request refused just now is worth retrying."""
        ...

    # ---- one service ----------------------------------------------------------------------

    def processes(self) -> dict[str, ProcessState]:
        """Every service's process, by service name."""
        ...

    def restart(self, name: str, wait: bool = True) -> str:
        """Apply the service's configuration again: a reload where it supports one, else a
        restart (a rollout on a cluster). Returns which it was."""
        ...

    def stop(self, name: str) -> None:
        """Stop one service until :meth:`start` (or :meth:`restart`) brings it back."""
        ...

    def start(self, name: str) -> None: ...

    def start_on_demand(self, name: str) -> None:
        """Start a service that only labs run (the front end), and wait until it answers."""
        ...

    def stop_on_demand(self, name: str) -> None: ...

    def log_path(self, name: str) -> Path: ...

    def log_tail(self, name: str, lines: int) -> list[str]: ...

    # ---- the two ways a lab changes the platform ------------------------------------------

    def set_override(self, name: str, values: Mapping[str, str], wait: bool = True) -> None:
        """Give one service settings of its own that win over the platform's, and apply them
        (locally ``config/<service>.env`` and a restart; on a cluster the Deployment's
        environment and a rollout)."""
        ...

    def clear_overrides(self) -> list[str]:
        """Remove every service's override and apply that; returns the services that had one."""
        ...

    def reload(self, name: str) -> None:
        """Make a service read its configuration again without a restart (locally its reload
        signal; on a cluster what the monitoring stack's config reloader needs, if anything)."""
        ...

    def restore_configs(self) -> list[str]:
        """Render every service's configuration from the source again where it was changed, and
        apply it. Returns the services that changed."""
        ...


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file (a line saying so when there is none yet)."""
    if not path.exists():
        return [f"(no log yet at {path})"]
    with path.open(errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]

"""Host access to a cluster without kind's port mappings: one `kubectl port-forward` per Service,
listening on the local runtime's port, so the CLI, `status` and the labs work unchanged. Each
runs under a keeper (`keep_forward`) that starts it again when kubectl ends it."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from mlops_lab.runtime.kube import host_processes
from mlops_lab.runtime.kube.kubectl import Kubectl


def ensure(
    kubectl: Kubectl, ports: dict[str, tuple[int, int]], host: str, path: Path, log_dir: Path
) -> list[str]:
    """Start a kept forward for each Service (name → (host port, Service port)) whose keeper is
    not running. Returns the names started."""
    running = host_processes.running(path)
    started = []
    for name, (host_port, service_port) in ports.items():
        if name in running:
            continue
        argv = [
            sys.executable,
            "-m",
            "mlops_lab.runtime.kube.keep_forward",
            *kubectl.argv(
                "port-forward", f"svc/{name}", f"{host_port}:{service_port}", "--address", host
            ),
        ]
        host_processes.start(path, name, argv, log_dir / f"port-forward-{name}.log")
        started.append(name)
    return started


def stop(path: Path, names: Iterable[str] | None = None) -> list[str]:
    """Stop the recorded forwards (all, or ``names``; by PID, only ours). Returns the names
    stopped."""
    return host_processes.stop(path, names, grace_s=5.0)

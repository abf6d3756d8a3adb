"""Host access to a cluster without kind's port mappings: one `kubectl port-forward` per Service,
listening on the local runtime's port, so the CLI, `status` and the labs work unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import psutil

from mlops_lab.runtime.kubectl import Kubectl


def _alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def recorded(path: Path) -> dict[str, int]:
    return json.loads(path.read_text()) if path.exists() else {}


def ensure(
    kubectl: Kubectl, ports: dict[str, tuple[int, int]], host: str, path: Path, log_dir: Path
) -> list[str]:
    """Start a forward for each Service (name → (host port, Service port)) whose forward is not
    running; a forward dies with its pod, so `status` and `up` call this again. Returns the names
    started."""
    pids = {name: pid for name, pid in recorded(path).items() if _alive(pid)}
    started = []
    log_dir.mkdir(parents=True, exist_ok=True)
    for name, (host_port, service_port) in ports.items():
        if name in pids:
            continue
        argv = kubectl.argv(
            "port-forward", f"svc/{name}", f"{host_port}:{service_port}", "--address", host
        )
        with (log_dir / f"port-forward-{name}.log").open("a") as log:
            # A session of its own: the forward outlives this command, like supervisord does.
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        pids[name] = process.pid
        started.append(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pids, indent=2) + "\n")
    return started


def stop(path: Path) -> list[str]:
    """Stop the recorded forwards (by PID, only ours). Returns the names stopped."""
    stopped = []
    for name, pid in recorded(path).items():
        if _alive(pid) and "port-forward" in " ".join(psutil.Process(pid).cmdline()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            stopped.append(name)
    path.unlink(missing_ok=True)
    return stopped

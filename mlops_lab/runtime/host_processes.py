"""Processes a Kubernetes runtime runs on this machine rather than in the cluster.

Each runs in a session of its own, so it outlives the command that started it (as supervisord's
children do on the local runtime), and is recorded by name and PID in a JSON file: `down` and
`clean` stop exactly those, never a process of the same name that is not ours. Two kinds use it:
`kubectl port-forward`s, and the on-demand client app, which stands for the outside world and
so sends its requests from outside the cluster, as a real client application would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil


def alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def recorded(path: Path) -> dict[str, int]:
    return json.loads(path.read_text()) if path.exists() else {}


def running(path: Path) -> dict[str, int]:
    """The recorded processes still alive: name -> PID."""
    return {name: pid for name, pid in recorded(path).items() if alive(pid)}


def _write(path: Path, pids: Mapping[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(pids), indent=2) + "\n")


def start(
    path: Path, name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` detached, its output appended to ``log``, and record it as ``name``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        process = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    _write(path, {**running(path), name: process.pid})
    return process.pid


def stop(
    path: Path, marker: str, names: Iterable[str] | None = None, grace_s: float = 10.0
) -> list[str]:
    """Stop the recorded processes (all, or ``names``) whose command line still holds
    ``marker`` (a PID reused by another program is left alone): SIGTERM, then SIGKILL for any
    still running after ``grace_s``. Returns the names stopped."""
    pids = recorded(path)
    chosen = set(pids) if names is None else set(names) & set(pids)
    stopping: dict[str, psutil.Process] = {}
    for name in sorted(chosen):
        pid = pids.pop(name)
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if alive(pid) and marker in " ".join(process.cmdline()):
                process.terminate()
                stopping[name] = process
    _gone, left = psutil.wait_procs(list(stopping.values()), timeout=grace_s)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    if pids:
        _write(path, pids)
    else:
        path.unlink(missing_ok=True)
    return list(stopping)

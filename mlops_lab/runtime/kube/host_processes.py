"""Processes a Kubernetes runtime runs on this machine rather than in the cluster.

Each runs in a session of its own, so it outlives the command that started it (as supervisord's
children do on the local runtime), and is recorded by name, PID and start time in a JSON file:
`down` and `clean` stop exactly those, never a process that was later given the same PID. Two
kinds use it: `kubectl port-forward`s, and the on-demand front end, which stands for the
outside world and so sends its requests from outside the cluster, as a real client application
would.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

from platform_core import state_file


def alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# A record: name -> [PID, the process's start time]. The start time tells our process from a
# later one that was given the same PID; a command line cannot (while a process is being
# exec'd, its command line reads empty).
Record = dict[str, list[float]]

WHAT = "processes started on this machine"
# A process whose entry was lost is no longer stopped by `down` or `clean`.
LOST_HINT = (
    "A process it named may still run: `pgrep -af 'keep_forward|mlops_lab.front_end'` finds it."
)


def _ours(entry: list[float]) -> psutil.Process | None:
    """The recorded process, if it is still running and is the one that was recorded."""
    pid, started = int(entry[0]), entry[1]
    try:
        process = psutil.Process(pid)
        ours = process.create_time() == started and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return None
    return process if ours else None


def recorded(path: Path) -> Record:
    """The record. A file that cannot be read is set aside, an entry that cannot be read left
    out (the file as it was kept beside it), each with a warning."""
    entries = state_file.read_json(path, dict, WHAT, LOST_HINT) or {}
    good = {name: entry for name, entry in entries.items() if _is_entry(entry)}
    if len(good) < len(entries):
        bad = ", ".join(repr(name) for name in entries if name not in good)
        state_file.copy_aside(path, WHAT, f"the entries of {bad}", LOST_HINT)
        _write(path, good)
    return good


def _is_entry(entry: object) -> bool:
    """[PID, start time], as :func:`start` writes it."""
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and type(entry[0]) is int
        and 0 < entry[0] < 2**31
        and type(entry[1]) in (int, float)
    )


def running(path: Path) -> dict[str, int]:
    """The recorded processes still running: name -> PID."""
    return {name: p.pid for name, entry in recorded(path).items() if (p := _ours(entry))}


def _write(path: Path, entries: Record) -> None:
    state_file.write_json(path, entries)


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
    started = psutil.Process(process.pid).create_time()
    entries = {n: e for n, e in recorded(path).items() if _ours(e)}
    _write(path, {**entries, name: [process.pid, started]})
    return process.pid


def stop(path: Path, names: Iterable[str] | None = None, grace_s: float = 10.0) -> list[str]:
    """Stop the recorded processes (all, or ``names``) that are still the ones recorded (a PID
    since given to another program is left alone): SIGTERM, then SIGKILL for any still running
    after ``grace_s``. Returns the names stopped."""
    entries = recorded(path)
    chosen = set(entries) if names is None else set(names) & set(entries)
    stopping: dict[str, psutil.Process] = {}
    children: list[psutil.Process] = []
    for name in sorted(chosen):
        process = _ours(entries.pop(name))
        if process is not None:
            with contextlib.suppress(psutil.Error):
                children += process.children(recursive=True)
                process.terminate()
                stopping[name] = process
    _gone, left = psutil.wait_procs(list(stopping.values()), timeout=grace_s)
    # A process killed after its grace leaves its children (a keeper's kubectl) behind.
    _gone, left_children = psutil.wait_procs(children, timeout=0 if left else grace_s)
    for process in left + left_children:
        with contextlib.suppress(psutil.Error):
            process.kill()
    if entries:
        _write(path, entries)
    else:
        path.unlink(missing_ok=True)
    return list(stopping)


def rename(path: Path, old: str, new: str) -> bool:
    """Record a running process under another name (a service renamed since it was started)."""
    entries = recorded(path)
    if old not in entries or new in entries:
        return False
    entries[new] = entries.pop(old)
    _write(path, entries)
    return True

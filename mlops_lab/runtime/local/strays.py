"""The platform's processes that outlived their supervisord.

supervisord stops its programs when it is asked to. Killed (``kill -9``, the OOM killer), it asks
nobody, and its programs go on running, holding the platform's ports, with no socket left to
reach them through. `down` finds them here and stops them; `up` and `clean` refuse while any
runs.

A process of this user belongs to the platform of a data dir when any of these holds:

- it is that data dir's supervisord (its command line names the data dir's supervisord.conf);
- supervisord started it, or a process it started did: its environment names a service
  (``MLOPS_LAB_SERVICE``) and this data dir (``MLOPS_LAB_HOME``);
- it listens on one of the platform's ports and runs in the data dir, as every program does.

Never this command or a process it runs under (a shell whose working dir is the data dir is
none of these, and is left alone).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from platform_core.settings import ENV_PREFIX, SERVICE_VARIABLE
from platform_core.waiting import TimedOut, poll

_HOME_VARIABLE = f"{ENV_PREFIX}HOME"
_ATTRS = ["pid", "name", "uids", "cwd", "cmdline", "environ", "status"]


@dataclass(frozen=True)
class Stray:
    process: psutil.Process
    name: str  # the service it is (or belongs to), else the program's name

    def describe(self) -> str:
        return f"{self.name} (pid {self.process.pid})"


def find(home: Path, conf: Path, ports: Collection[int]) -> list[Stray]:
    """The processes of the platform in ``home`` that still run (``conf``: its supervisord.conf;
    ``ports``: the platform's ports), by PID."""
    home_real = os.path.realpath(home)
    conf_real = os.path.realpath(conf)
    me = psutil.Process()
    spared = {me.pid} | {parent.pid for parent in me.parents()}
    uid = os.getuid()
    found = []
    for process in psutil.process_iter(_ATTRS, ad_value=None):
        info = process.info
        uids = info["uids"]
        if info["pid"] in spared or uids is None or uids.real != uid:
            continue
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue  # dead already, waiting for its parent to read its exit status
        cwd = info["cwd"]
        environ = info["environ"] or {}
        service = environ.get(SERVICE_VARIABLE)
        if _is_supervisord_of(info["cmdline"] or [], cwd, conf_real):
            found.append(Stray(process, "supervisord"))
        elif service and _same_path(environ.get(_HOME_VARIABLE), cwd, home_real):
            found.append(Stray(process, service))
        elif cwd == home_real and _listens_on(process, ports):
            found.append(Stray(process, info["name"] or "a process"))
    return sorted(found, key=lambda stray: stray.process.pid)


def _is_supervisord_of(cmdline: Sequence[str], cwd: str | None, conf_real: str) -> bool:
    """`supervisord -c <conf>`, run as a script (`python .../supervisord -c ...`) or not."""
    if not any(os.path.basename(arg) == "supervisord" for arg in cmdline[:2]):
        return False
    return any(arg.endswith(".conf") and _same_path(arg, cwd, conf_real) for arg in cmdline[1:])


def _same_path(value: str | None, cwd: str | None, real: str) -> bool:
    """Whether the path ``value`` (relative to ``cwd`` if it is relative) is ``real``."""
    if not value:
        return False
    if not os.path.isabs(value):
        if cwd is None:
            return False
        value = os.path.join(cwd, value)
    return os.path.realpath(value) == real


def _listens_on(process: psutil.Process, ports: Collection[int]) -> bool:
    try:
        connections = process.net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports for c in connections
    )


def stop(strays: Sequence[Stray], grace_s: float = 10.0) -> list[Stray]:
    """SIGTERM to each, SIGKILL to any still running after ``grace_s`` (as supervisord would
    have done). Returns those still running after that (none, unless one cannot be killed)."""
    for stray in strays:
        with contextlib.suppress(psutil.Error):
            stray.process.terminate()
    if _wait_gone(strays, grace_s):
        return []
    for stray in strays:
        with contextlib.suppress(psutil.Error):
            stray.process.kill()
    _wait_gone(strays, 5.0)
    return [stray for stray in strays if running(stray.process)]


def _wait_gone(strays: Sequence[Stray], timeout_s: float) -> bool:
    # Not psutil.wait_procs: it waits out its timeout on a zombie that is not our child.
    try:
        poll(
            lambda: not any(running(s.process) for s in strays),
            timeout_s,
            every_s=0.1,
            tolerate=(),
        )
    except TimedOut:
        return False
    return True


def running(process: psutil.Process) -> bool:
    """Still running: not exited, not a zombie, and not a later process given the same PID."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

"""supervisord for the local runtime: starts it on the config supervisor_config renders, and
talks to it over XML-RPC.

supervisord gives us what a laptop lacks and Kubernetes has: one place that starts every process,
restarts the ones that crash, and keeps their logs. It listens on a unix socket in the data dir,
never on a TCP port.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import stat
import subprocess
import tempfile
import xmlrpc.client
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict, cast

from supervisor.xmlrpc import SupervisorTransport

from mlops_lab.runtime.executables import venv_bin
from platform_core.errors import PlatformError
from platform_core.paths import DataPaths
from platform_core.waiting import TimedOut, poll

# sun_path holds 108 bytes on Linux and 104 on macOS, including the terminating NUL.
_MAX_UNIX_SOCKET_PATH = 100


def socket_path(paths: DataPaths) -> Path:
    """Where supervisord listens: in the data dir's run dir, unless that path is too long."""
    path = paths.run / "supervisor.sock"
    if len(str(path)) < _MAX_UNIX_SOCKET_PATH:
        return path
    # A deep checkout would exceed the kernel's limit for socket paths: use a directory only
    # we can enter, keyed by the data dir so two checkouts never share one supervisor.
    digest = hashlib.sha256(str(paths.home).encode()).hexdigest()[:12]
    return private_socket_dir(Path(tempfile.gettempdir())) / f"{digest}.sock"


def conf_path(paths: DataPaths) -> Path:
    return paths.run / "supervisord.conf"


def pidfile(paths: DataPaths) -> Path:
    return paths.run / "supervisord.pid"


def _exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def private_socket_dir(base: Path) -> Path:
    """``base/mlops-lab-<uid>``, created 0700. In a shared /tmp anyone could have made it first
    (to read or hijack our socket), so an existing one must be ours, a real dir and private."""
    path = base / f"mlops-lab-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = "is a symbolic link or not a directory"
    elif info.st_uid != os.getuid():
        problem = f"is not owned by you (owner uid {info.st_uid})"
    elif stat.S_IMODE(info.st_mode) != 0o700:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    if problem:
        raise PlatformError(
            f"{path}, where the supervisor socket goes when the data dir path is too long, "
            f"{problem}: another user could reach the platform through it.",
            hint=f"Remove {path} if it is not yours, or set MLOPS_LAB_HOME to a shorter path.",
        )
    return path


class SupervisorError(RuntimeError):
    pass


class SupervisorState(TypedDict):
    """supervisord's ``getState`` answer."""

    statecode: int
    statename: str


class ProcessInfo(TypedDict):
    """One program in supervisord's ``getAllProcessInfo`` answer: the fields the platform reads
    (supervisord sends more: group, state, stop, now, exitstatus, spawnerr, logfiles)."""

    name: str
    statename: str  # RUNNING, STOPPED, EXITED, FATAL, BACKOFF, STARTING, STOPPING, UNKNOWN
    description: str
    start: int  # epoch seconds of the last start, 0 if never started
    pid: int  # 0 when not running


class Supervisor:
    """A handle on the supervisord that owns one data dir."""

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path(self.paths)}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    @property
    def rpc(self):  # the supervisor namespace of the XML-RPC API
        return self._proxy().supervisor

    def pid(self) -> int | None:
        try:
            pid = int(pidfile(self.paths).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def is_running(self) -> bool:
        if not socket_path(self.paths).exists():
            return False
        try:
            state = cast(SupervisorState, self.rpc.getState())  # XML-RPC answers: any value
            return state["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault, http.client.HTTPException):
            return False

    def running_config(self) -> str | None:
        path = conf_path(self.paths)
        return path.read_text() if path.exists() else None

    def write_config(self, text: str) -> None:
        path = conf_path(self.paths)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(text)

    def start(self, env: Mapping[str, str], timeout_s: float = 20.0) -> None:
        """Start supervisord in the background (it daemonizes) and wait for its socket."""
        socket_path(self.paths).unlink(missing_ok=True)
        result = subprocess.run(
            [str(venv_bin("supervisord")), "-c", str(conf_path(self.paths))],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SupervisorError(
                f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}\n"
                f"Its log: {self.paths.log_file('supervisord')}"
            )
        try:
            poll(self.is_running, timeout_s, every_s=0.1, tolerate=())
        except TimedOut:
            raise SupervisorError(
                f"supervisord did not answer on {socket_path(self.paths)} within {timeout_s:.0f}s."
                f" Its log: {self.paths.log_file('supervisord')}"
            ) from None

    def process_info(self) -> dict[str, ProcessInfo]:
        # XML-RPC types its answers as any marshallable value.
        infos = cast(list[ProcessInfo], self.rpc.getAllProcessInfo())
        return {info["name"]: info for info in infos}

    def start_process(self, name: str, wait: bool = False) -> None:
        try:
            self.rpc.startProcess(name, wait)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise

    def stop_process(self, name: str) -> None:
        try:
            self.rpc.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def signal_process(self, name: str, signal_name: str) -> None:
        self.rpc.signalProcess(name, signal_name)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Stop every program (each gets TERM, then KILL after stopwaitsecs) and supervisord."""
        pid = self.pid()
        try:
            self.rpc.stopAllProcesses(True)
            self.rpc.shutdown()
        except (OSError, xmlrpc.client.Fault, http.client.HTTPException):
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
        if pid is not None:
            # One still stopping after timeout_s is left to finish on its own.
            with contextlib.suppress(TimedOut):
                poll(lambda: _exited(pid), timeout_s, every_s=0.1, tolerate=())
        socket_path(self.paths).unlink(missing_ok=True)

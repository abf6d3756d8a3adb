"""Is a port free, and if not, who holds it."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class PortOwner:
    pid: int | None
    program: str | None

    def describe(self) -> str:
        if self.program and self.pid:
            return f"{self.program} (pid {self.pid})"
        return "another program"


def is_free(host: str, port: int) -> bool:
    """Try the bind our services will do. SO_REUSEADDR mirrors them, so TIME_WAIT is no conflict."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def owner(port: int) -> PortOwner:
    """The process listening on ``port``, if the OS shows it (other users' may be hidden)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return PortOwner(None, None)
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return PortOwner(None, None)
            try:
                return PortOwner(conn.pid, psutil.Process(conn.pid).name())
            except psutil.Error:
                return PortOwner(conn.pid, None)
    return PortOwner(None, None)


def conflicts(host: str, wanted: Iterable[tuple[int, str, str]]) -> list[str]:
    """One line per port of ``wanted`` (port, what will listen there, the setting that moves it)
    that another program holds on ``host``: who holds it, and the two ways out."""
    return [
        f"Port {port} ({what}) on {host} is in use by {owner(port).describe()}. "
        f"Stop it, or choose another port: {setting}=<port>"
        for port, what, setting in wanted
        if not is_free(host, port)
    ]


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

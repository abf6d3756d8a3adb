"""Is a port free, and if not, who holds it."""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

from platform_core.errors import PlatformError

# Ports for test platforms, benchmarks and private forwards. Not the kernel's ephemeral range
# (bind to port 0 picks there): every outgoing connection takes its local port from that range,
# so a port picked there can be taken by some client before a slow service binds it, which
# happened under load ("Address already in use" from a service tens of seconds into its start).
# Not Kubernetes' NodePorts either (30000-32767), which kube-proxy holds on a node.
SPARE_PORTS = range(20_000, 30_000)
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


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


def ephemeral_ports() -> range:
    """The range outgoing connections take their local ports from (Linux's default elsewhere)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return range(32_768, 61_000)
    return range(low, high + 1)


def spare_ports(count: int, host: str = "127.0.0.1", within: range = SPARE_PORTS) -> list[int]:
    """``count`` distinct ports of ``within``, outside the ephemeral range, free now: each is held
    until all are chosen, and picked at random so that separate runs rarely meet."""
    ephemeral = ephemeral_ports()
    candidates = [port for port in within if port not in ephemeral]
    random.shuffle(candidates)
    with ExitStack() as held:
        chosen: list[int] = []
        for port in candidates:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            held.enter_context(sock)
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise PlatformError(
        f"Only {len(chosen)} of the {count} ports wanted are free in "
        f"{within.start}-{within.stop - 1} outside the ephemeral range "
        f"{ephemeral.start}-{ephemeral.stop - 1}.",
        hint="Stop what holds those ports, or give fewer services.",
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now, outside the ephemeral range (for forwards, tests and benchmarks)."""
    return spare_ports(1, host)[0]

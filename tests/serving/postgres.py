"""A throwaway PostgreSQL server for tests that prove the prediction log works on it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import free_ports


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI containers often are root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def skip_reason() -> str | None:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on a free port in a temp dir; yields a SQLAlchemy URL (psycopg)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    home = Path(tempfile.mkdtemp(prefix="mlab-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    data, port = home / "data", free_ports(1)[0]

    def run(*args: str) -> None:
        subprocess.run(
            _as_server_user(list(args)), check=True, capture_output=True, text=True, timeout=120
        )

    try:
        run("initdb", "-D", str(data), "-U", "lab", "--auth=trust", "--no-sync")
        options = f"-p {port} -k {home} -h 127.0.0.1 -F"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(home / "pg.log"), "-w", "start")
        yield f"postgresql+psycopg://lab@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)

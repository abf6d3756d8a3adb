"""A throwaway PostgreSQL server for the prediction log, on a free port in a temp dir.

Tests that prove the log works on PostgreSQL start one for a test module
(:func:`postgres_server`); the reliability suite keeps one (:class:`PostgresServer`) for its whole
package. Both stop and start it: the "database unavailable" fault is a real server going away,
not a patched connection.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import free_ports


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI containers often are root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(*command: str, check: bool = True) -> None:
    subprocess.run(
        _as_server_user(list(command)), check=check, capture_output=True, text=True, timeout=120
    )


class PostgresServer:
    """One server's data dir and port; ``url`` is its SQLAlchemy URL (psycopg, user ``lab``)."""

    def fresh_database(self) -> str:
        """The URL of a new, empty database on this server."""
        name = f"log_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mlab-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
        self.data = self.home / "data"
        self.port = free_ports(1)[0]
        self.url = f"postgresql+psycopg://lab@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        _run("initdb", "-D", str(self.data), "-U", "lab", "--auth=trust", "--no-sync")

    def start(self) -> None:
        # The same port every time: clients keep their URL across an outage.
        options = f"-p {self.port} -k {self.home} -h 127.0.0.1 -F"
        log = str(self.home / "pg.log")
        _run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        # "fast": open connections are cut, as when a database server goes down.
        _run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A server for the duration of the block (the test is skipped, with the reason, where none
    can run)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()

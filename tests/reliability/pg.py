"""A PostgreSQL server for the prediction log that the suite can stop and start again: the
"database unavailable" fault is a real server going away, not a patched connection."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.serving.postgres import _as_server_user, skip_reason
from tests.support import free_ports


class PostgresServer:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mlab-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
        self.data = self.home / "data"
        self.port = free_ports(1)[0]
        self.url = f"postgresql+psycopg://lab@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def unavailable_reason() -> str | None:
        return skip_reason()

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        command = _as_server_user(["pg_ctl", "-D", str(self.data), *args])
        subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        command = ["initdb", "-D", str(self.data), "-U", "lab", "--auth=trust", "--no-sync"]
        subprocess.run(_as_server_user(command), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        # The same port every time: serving keeps its URL across the outage.
        options = f"-p {self.port} -k {self.home} -h 127.0.0.1 -F"
        self._pg_ctl("-o", options, "-l", str(self.home / "pg.log"), "-w", "start")

    def stop(self) -> None:
        # "fast": open connections are cut, as when a database server goes down.
        self._pg_ctl("-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

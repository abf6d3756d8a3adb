"""One platform for the whole reliability suite, under steady load from start to end.

MLflow and serving run under supervisord (the local runtime), with the prediction log on a real
PostgreSQL server that a test stops and starts. A separate process sends 50 requests/s for the
whole package; each test injects one fault and judges the answers sent meanwhile. The tests run
in file order and share the record of what happened (:class:`Run`): the last one checks that
the prediction log holds exactly the successful answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.local.supervisor import Supervisor
from platform_core import prediction_log
from platform_core.settings import REPO_ROOT, Settings
from tests import models
from tests.postgres import PostgresServer, unavailable_reason
from tests.serving.conftest import metric, wait_until_serving
from tests.support import running_platform, wait_for

RPS = 50.0
# Bounds the load process if the suite dies without stopping it (it normally lasts ~3 minutes).
MAX_LOAD_S = 900.0


class Load:
    """The load process and what it has recorded so far."""

    def __init__(self, url: str, out: Path) -> None:
        self.out = out
        command = [sys.executable, "-m", "tests.reliability.load", url, str(out)]
        command += ["--rps", str(RPS), "--max-seconds", str(MAX_LOAD_S)]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT)

    def outcomes(self) -> list[dict[str, Any]]:
        """Every request completed so far (with its retry, if it needed one)."""
        lines = self.out.read_text().splitlines() if self.out.exists() else []
        done = []
        for line in lines:
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:  # the line being written right now
                break
        return done

    def sent_between(self, start: float, end: float = float("inf")) -> list[dict[str, Any]]:
        return [o for o in self.outcomes() if start <= o["sent"] < end]

    def settled(self, start: float, end: float, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Every request sent between ``start`` and ``end``, once all of them have completed
        (retries included). Requests are sent in index order, so a later one bounds the set."""

        def complete() -> list[dict[str, Any]] | None:
            done = self.outcomes()
            later = [o["i"] for o in done if o["sent"] >= end]
            if not later:
                return None
            first = max((o["i"] for o in done if o["sent"] < start), default=-1) + 1
            wanted = range(first, min(later))
            by_index = {o["i"]: o for o in done if first <= o["i"] < min(later)}
            if len(by_index) < len(wanted):
                return None
            return [o for o in by_index.values() if o["sent"] >= start] or None

        return wait_for(complete, timeout_s, what="the requests of the window to complete")

    def stop(self) -> list[dict[str, Any]]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return self.outcomes()


@dataclass
class Run:
    settings: Settings
    url: str
    pg: PostgresServer
    log_db: Engine
    load: Load
    summary: Path
    champion: str
    # Every other /predict answered 200 during the run (request id -> records): they are rows too.
    other_answers: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def supervisor(self) -> Supervisor:
        return LocalRuntime(self.settings).supervisor

    def wait_for_answers_from(self, version: str, since: float, timeout_s: float = 60) -> float:
        """When the first request sent after ``since`` was answered by ``version``."""
        return wait_for(
            lambda: min(
                (o["sent"] for o in self.load.sent_between(since) if o.get("version") == version),
                default=None,
            ),
            timeout_s,
            what=f"answers from version {version}",
            log=self.settings.paths.log_file("serving"),
        )

    def record(self, **figures: Any) -> None:
        self.figures.update(figures)
        self.summary.write_text(json.dumps(self.figures, indent=2) + "\n")


def _platform_processes(home: Path) -> dict[int, int]:
    """pid -> parent pid of every running process with this platform's data dir in its
    environment: supervisord and everything it started, and anything that escaped it."""
    found = {}
    marker = f"MLOPS_LAB_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                # The parent pid is the 2nd field after the command, which is in parentheses.
                stat = (entry / "stat").read_text()
                found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return found


def children(settings: Settings, pid: int) -> list[int]:
    return [child for child, parent in _platform_processes(settings.home).items() if parent == pid]


def orphans(settings: Settings) -> list[int]:
    """Processes of this platform that supervisord no longer supervises (its descendants)."""
    processes = _platform_processes(settings.home)
    root = Supervisor(settings.paths).pid()
    kept = {root}
    while True:
        more = {pid for pid, parent in processes.items() if parent in kept} - kept
        if not more:
            break
        kept |= more
    return sorted(set(processes) - kept)


@pytest.fixture(scope="package")
def postgres() -> Iterator[PostgresServer]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    pg = PostgresServer()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture(scope="package")
def platform(postgres: PostgresServer) -> Iterator[Settings]:
    """MLflow and serving, with the prediction log on that server."""
    with running_platform(
        ["mlflow", "serving"],
        prediction_log_url=postgres.url,
        alias_poll_interval_s=1.0,
    ) as settings:
        try:
            yield settings
        finally:
            # A process that escaped supervisord would outlive `down`: end it here.
            for pid in orphans(settings):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def run(
    platform: Settings, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """A champion served, and the load on it from start to end of the package."""
    work = tmp_path_factory.mktemp("reliability")
    url = platform.url(platform.serving_port)
    # Created here, before any traffic: one process creates the table.
    log_db = prediction_log.connect(postgres.url)
    v1 = models.register_model(platform, seed=1, rows=600).version
    models.set_champion(platform, v1)
    wait_until_serving(platform, v1)
    load = Load(url, work / "load.jsonl")
    try:
        # The load process takes seconds to import; the tests measure from its answers.
        wait_for(lambda: len(load.outcomes()) >= RPS, 120, what="the load to start")
        yield Run(platform, url, postgres, log_db, load, work / "summary.json", v1)
    finally:
        load.stop()
        log_db.dispose()


def queue_depth(url: str) -> float | None:
    return metric(url, "serving_prediction_log_queue_depth")

"""One platform for the serving tests: real MLflow and a real `bentoml serve` under supervisord.

Two model versions are registered; version 1 is the champion when each test starts. Tests that
move the alias or stop a process put things back before they return.

The prediction-log tests need no platform: ``log_url`` is an empty log on SQLite, and on a
PostgreSQL server of the module's own (marked ``platform``: it starts a server).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from mlops_lab.runtime.local.runtime import LocalRuntime
from pipelines import data
from platform_core import prediction_log
from platform_core.settings import Settings
from serving.schema import records_from_frame
from tests import models
from tests.postgres import PostgresServer, postgres_server
from tests.support import running_platform, scrape, wait_for


@dataclass(frozen=True)
class Platform:
    settings: Settings
    url: str
    v1: str
    v2: str
    # /readyz, /livez and /predict as they answered once MLflow was reachable but no champion
    # existed.
    readiness_without_champion: httpx.Response
    liveness_without_champion: httpx.Response
    prediction_without_champion: httpx.Response
    # Created before any traffic: the table is created once, not raced by two processes.
    log_db: Engine


def metric(url: str, name: str) -> float | None:
    """The value of an unlabelled (or first) sample named ``name`` on /metrics."""
    for key, value in scrape(f"{url}/metrics").items():
        if key == name or key.startswith(f"{name}{{"):
            return value
    return None


def wait_until_serving(settings: Settings, version: str, timeout_s: float = 60) -> None:
    url = settings.url(settings.serving_port)
    wait_for(
        lambda: metric(url, "serving_model_version") == float(version),
        timeout_s,
        what=f"serving to load version {version}",
        log=settings.paths.log_file("serving"),
    )


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    with running_platform(
        ["mlflow", "serving"],
        alias_poll_interval_s=1.0,
        max_batch_records=50,
        # Long enough that rows are still queued when a test restarts the service.
        prediction_log_flush_interval_s=3.0,
    ) as settings:
        url = settings.url(settings.serving_port)
        wait_for(
            lambda: metric(url, "serving_registry_reachable") == 1.0,
            60,
            what="serving to reach MLflow",
        )
        readiness = httpx.get(f"{url}/readyz", timeout=5)
        liveness = httpx.get(f"{url}/livez", timeout=5)
        record = records_from_frame(data.generate(1, "baseline", seed=3), data.FEATURE_NAMES)[0]
        prediction = httpx.post(f"{url}/predict", json={"records": [record]}, timeout=10)
        log_db = prediction_log.connect(settings.prediction_log_db_url)
        v1 = models.register_model(settings, seed=1).version
        v2 = models.register_model(settings, seed=2, rows=1_200).version
        models.set_champion(settings, v1)
        wait_until_serving(settings, v1)
        yield Platform(settings, url, str(v1), str(v2), readiness, liveness, prediction, log_db)
        log_db.dispose()


@pytest.fixture(scope="session")
def log_db(platform: Platform) -> Engine:
    return platform.log_db


@pytest.fixture
def http(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.url, timeout=30) as client:
        yield client


def restart_serving(platform: Platform) -> None:
    """Stop serving gracefully (queued log rows are written) and start it again, ready."""
    supervisor = LocalRuntime(platform.settings).supervisor
    supervisor.rpc.stopProcess("serving", True)
    supervisor.rpc.startProcess("serving", True)
    wait_until_serving(platform.settings, platform.v1, timeout_s=120)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.platform)])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty prediction log on each database the platform supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres").fresh_database()

"""One platform for the monitoring tests, with intervals in seconds instead of minutes, except the
drift monitor's: it checks once at start, then only when a test asks (``POST /check``), so what
a check saw is what the test sent, and no check every two seconds competes for the CPU.

Tests that need their own model or prediction log get them through :func:`isolated`: another
registered-model name and another SQLite file on the same MLflow, so they never see each other's
champions or traffic, whatever order they run in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from platform_core import prediction_log
from platform_core.settings import Settings
from tests.support import running_platform

# Everything the end-to-end scenario needs; the other tests use MLflow (and Prefect) from it.
PLATFORM_SERVICES = (
    "mlflow",
    "prefect",
    "prometheus",
    "alertmanager",
    "drift-monitor",
    "alert-receiver",
    "serving",
    "flows",
)

# The loop in seconds (benchmarks/bench_loop.py times it with these).
FAST_MONITORING = {
    "drift_interval_s": 2.0,
    "drift_window_rows": 300,
    "drift_min_rows": 200,
    "drift_alert_for_s": 4.0,
    "alert_for_s": 4.0,
    "alert_group_wait_s": 1.0,
    "performance_min_labels": 100,
    "alias_poll_interval_s": 1.0,
}
# The tests ask for drift checks (`POST /check`, support.check_now) once their traffic is in the
# log, so what a check saw never depends on timing: the monitor checks at start, then not again
# within a test run.
CHECKS_ON_REQUEST = {"drift_interval_s": 3600.0}


# Package scope: stopped as soon as the monitoring tests are done, so its processes do not run on
# beside the rest of the suite.
@pytest.fixture(scope="package")
def platform() -> Iterator[Settings]:
    with running_platform(PLATFORM_SERVICES, **FAST_MONITORING | CHECKS_ON_REQUEST) as settings:
        yield settings


def isolated(settings: Settings, tmp_path: Path) -> Settings:
    """The same platform seen through another model name and an empty prediction log."""
    return settings.model_copy(
        update={
            "model_name": f"monitoring-{uuid.uuid4().hex[:8]}",
            "prediction_log_url": SecretStr(f"sqlite:///{tmp_path / 'predictions.db'}"),
        }
    )


@pytest.fixture
def own(platform: Settings, tmp_path: Path) -> Settings:
    return isolated(platform, tmp_path)


@pytest.fixture
def own_log(own: Settings) -> Engine:
    return prediction_log.connect(own.prediction_log_db_url)

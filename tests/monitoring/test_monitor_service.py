"""The drift monitor as the platform runs it: a supervised process that survives MLflow down."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mlops_lab.runtime.local.runtime import LocalRuntime
from platform_core.settings import Settings
from tests.monitoring.support import log_lines
from tests.support import running_platform, scrape, wait_for


# A platform of its own, not the area's: its MLflow must be down, and its monitor must check on its
# own (every second) to show the loop outlives failed checks.
@pytest.fixture(scope="module")
def platform() -> Iterator[Settings]:
    """Only the monitor: MLflow's port is free, so every check finds MLflow down."""
    with running_platform(["drift-monitor"], drift_interval_s=1.0) as settings:
        yield settings


def _metrics(settings: Settings) -> dict[str, float]:
    return scrape(settings.url(settings.drift_monitor_port, "/metrics"))


def test_mlflow_down_is_a_status_the_monitor_keeps_reporting(platform: Settings) -> None:
    key = 'drift_checks_total{status="mlflow_unreachable"}'
    wait_for(lambda: _metrics(platform).get(key, 0) >= 3, 60, what="three failed checks")
    metrics = _metrics(platform)
    assert metrics['drift_check_status{status="mlflow_unreachable"}'] == 1
    assert metrics['drift_check_status{status="ok"}'] == 0


def test_the_log_says_why_and_where(platform: Settings) -> None:
    expected = "drift check mlflow_unreachable in"
    wait_for(lambda: expected in log_lines(platform, "drift-monitor"), 60, what="log line")
    line = next(
        line for line in log_lines(platform, "drift-monitor").splitlines() if expected in line
    )
    assert f"MLflow is not reachable at {platform.mlflow_url}" in line


def test_the_process_stays_up_and_alive(platform: Settings) -> None:
    supervisor = LocalRuntime(platform).supervisor
    pid = supervisor.process_info()["drift-monitor"]["pid"]
    key = 'drift_checks_total{status="mlflow_unreachable"}'
    seen = _metrics(platform).get(key, 0)
    wait_for(lambda: _metrics(platform)[key] >= seen + 2, 60, what="two more checks")
    info = supervisor.process_info()["drift-monitor"]
    assert (info["statename"], info["pid"]) == ("RUNNING", pid)
    url = platform.url(platform.drift_monitor_port)
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{url}/status", timeout=5).json()["status"] == "mlflow_unreachable"

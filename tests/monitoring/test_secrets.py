"""The prediction log's password never shows: not on /status, in the log file or in the CLI.

The log URL points at a PostgreSQL port where nothing listens, so every check fails reading it
and says where it looked: that message, the monitor's start-up line and the CLI's output must
name the database without its password.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from platform_core.settings import Settings
from tests.models import register_champion
from tests.monitoring.support import check_now, log_lines
from tests.support import free_ports, run_cli, running_platform, wait_for

PASSWORD = "s3cret-Pa55word"


@pytest.fixture(scope="module")
def secret_log(platform: Settings) -> Settings:
    """A model with a champion on the test platform's MLflow, and a log URL with a password."""
    (nothing_listens,) = free_ports(1)
    settings = platform.model_copy(
        update={
            "model_name": "monitoring-secret-url",
            "prediction_log_url": SecretStr(
                f"postgresql+psycopg://mlops:{PASSWORD}@127.0.0.1:{nothing_listens}/predictions"
            ),
        }
    )
    register_champion(settings)
    return settings


@pytest.fixture(scope="module")
def monitor(secret_log: Settings) -> Iterator[Settings]:
    """A drift monitor of its own, reading that log and the test platform's MLflow: a monitor
    reads its settings once, at start, so the platform's cannot be pointed at another log. It
    checks at start and when asked."""
    with running_platform(
        ["drift-monitor"],
        mlflow_port=secret_log.mlflow_port,
        model_name=secret_log.model_name,
        prediction_log_url=secret_log.prediction_log_url,
        drift_interval_s=3600.0,
    ) as settings:
        assert check_now(settings)["status"] == "prediction_log_unreachable"
        yield settings


def test_status_names_the_log_without_its_password(monitor: Settings) -> None:
    status = httpx.get(monitor.url(monitor.drift_monitor_port, "/status"), timeout=5)
    assert "Cannot read the prediction log at postgresql+psycopg://mlops:***@" in status.text
    assert PASSWORD not in status.text


def test_the_monitor_log_file_has_no_password(monitor: Settings) -> None:
    checked = "drift check prediction_log_unreachable"

    def logged() -> str | None:
        text = log_lines(monitor, "drift-monitor")
        return text if checked in text else None

    # The log reaches its file through supervisord, a moment after the check's answer.
    lines = wait_for(logged, 15, what=f"{checked!r} logged")
    assert "Checking drift every" in lines and "mlops:***@127.0.0.1" in lines
    assert PASSWORD not in lines


def test_drift_check_prints_no_password(secret_log: Settings) -> None:
    result = run_cli(secret_log, "drift", "check", timeout=300)
    assert "Cannot read the prediction log at" in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr

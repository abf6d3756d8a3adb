"""Rollback: from `mlops-lab model rollback` until every answer carries the old version.

Starts MLflow and serving on free ports with the default alias poll interval, promotes two
versions through the CLI (so the rollback has a history), and while requests keep arriving,
times the rollback command and then the wait until twenty answers in a row come from the
previous champion.
"""

from __future__ import annotations

import time

import httpx

from benchmarks import results
from benchmarks.records import complete_records
from benchmarks.results import Figure, Report
from platform_core.settings import Settings
from tests.models import register_model
from tests.serving.conftest import wait_until_serving
from tests.support import run_cli, running_platform

SECTION = "rollback"
IN_A_ROW = 20


def _promote(settings: Settings, version: str) -> None:
    result = run_cli(settings, "model", "promote", version)
    if result.returncode != 0:
        raise RuntimeError(f"`mlops-lab model promote {version}` failed:\n{result.stderr}")
    wait_until_serving(settings, version, timeout_s=120)


def until_every_answer_is(url: str, version: str, timeout_s: float = 300) -> float:
    """Seconds until ``IN_A_ROW`` consecutive answers come from ``version``."""
    records = complete_records(IN_A_ROW)
    started = time.perf_counter()
    in_a_row = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while in_a_row < IN_A_ROW:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"serving still answers with another version than v{version}")
            answer = client.post("/predict", json={"records": [records[in_a_row]]})
            answered = answer.json().get("model_version") if answer.status_code == 200 else None
            in_a_row = in_a_row + 1 if answered == version else 0
            if in_a_row == 0:
                time.sleep(0.05)
    return time.perf_counter() - started


def measure(report: Report, quick: bool = False) -> None:
    # pydantic-settings' init arguments are not fields, so the type checker does not see them.
    defaults = Settings(_env_file=None)  # pyright: ignore[reportCallIssue]
    with running_platform(["mlflow", "serving"]) as settings:
        old = register_model(settings, seed=1, rows=2_000, label="bench").version
        new = register_model(settings, seed=2, rows=2_000, label="bench").version
        _promote(settings, old)
        _promote(settings, new)
        url = settings.url(settings.serving_port)
        started = time.perf_counter()
        result = run_cli(settings, "model", "rollback")
        command_s = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"`mlops-lab model rollback` failed:\n{result.stderr}")
        total_s = command_s + until_every_answer_is(url, old)
    report.add(
        Figure(
            SECTION,
            "model rollback -> every answer from the old version",
            total_s,
            "s",
            "the rollback command alone",
            command_s,
            note=f"alias polled every {defaults.alias_poll_interval_s:.0f} s",
        ),
    )


if __name__ == "__main__":
    results.main(measure)

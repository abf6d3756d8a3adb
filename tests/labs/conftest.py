"""One platform for every lab test: all services, intervals in seconds, and the loan front end
sending 20 applications a second while a lab runs. Labs run one after another on it, each
starting from (and reset back to) the golden state, as a learner's platform would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlops_lab.lab_engine.kit import LabContext
from platform_core.settings import Settings
from tests.support import running_platform

FAST_LABS = {
    # Every 4 s: a check is Evidently's statistical tests alone (about 15 ms of CPU; drawing its
    # report took 0.7 s, and a quarter of a core per platform at this interval).
    "drift_interval_s": 4.0,
    "reference_rows": 1_000,
    "drift_window_rows": 200,
    "drift_min_rows": 100,
    "drift_alert_for_s": 4.0,
    "alert_for_s": 4.0,
    # Lab 10's latency alert must resolve within a cycle: it does once its window has passed.
    "alert_rate_window_s": 20.0,
    "alert_group_wait_s": 1.0,
    # Lab 22's page: the front end's 20 requests a second add 400 series over the 20 s window.
    "alert_series_growth": 200,
    # Lab 11's fix shows when Alertmanager re-sends the firing drift alert after its reload.
    "alert_group_interval_s": 5.0,
    "performance_min_labels": 60,
    "alias_poll_interval_s": 1.0,
    "front_end_rate_per_s": 20.0,
    "default_rows": 3_000,
    # No lab here runs a rollout: the decision flow's runs (a second or two, every interval)
    # would only show up among the flow runs the lab tests expect to be the retrains'.
    "rollout_check_interval_s": 24 * 3600.0,
}


@pytest.fixture(scope="package")
def platform() -> Iterator[Settings]:
    with running_platform(None, **FAST_LABS) as settings:
        yield settings


@pytest.fixture(scope="package")
def ctx(platform: Settings) -> LabContext:
    return LabContext(platform)

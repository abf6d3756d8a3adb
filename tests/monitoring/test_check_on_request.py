"""`POST /check` runs a drift check now, whatever the interval: a lab reset asks for one rather
than wait for the next. The area's monitor checks every hour, so any check counted during the
test is the one asked for."""

from __future__ import annotations

import httpx

from platform_core.settings import Settings
from tests.monitoring.support import check_now
from tests.support import scrape, wait_for


def _checks_run(settings: Settings) -> dict[str, float]:
    """``drift_checks_total`` by status."""
    samples = scrape(settings.url(settings.drift_monitor_port, "/metrics"))
    prefix = 'drift_checks_total{status="'
    return {
        key[len(prefix) : -2]: value for key, value in samples.items() if key.startswith(prefix)
    }


def test_a_check_asked_for_runs_now_and_answers_with_its_outcome(platform: Settings) -> None:
    status_url = platform.url(platform.drift_monitor_port, "/status")
    # The check the monitor runs at start, over before this one is asked for.
    wait_for(
        lambda: httpx.get(status_url, timeout=5).json()["status"] != "starting",
        120,
        what="the monitor's first check",
        log=platform.paths.log_file("drift-monitor"),
    )
    before = _checks_run(platform)

    outcome = check_now(platform)

    after = _checks_run(platform)
    assert sum(after.values()) == sum(before.values()) + 1
    assert after[outcome["status"]] == before.get(outcome["status"], 0) + 1
    assert httpx.get(status_url, timeout=5).json() == outcome

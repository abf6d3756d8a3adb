"""The flows service's /health: healthy only while its runner keeps polling Prefect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.runner import MISSED_POLLS, POLL_INTERVAL_S, health

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_runner_that_has_not_polled_yet_is_starting() -> None:
    status, body = health(None, NOW)

    assert (status, body["status"]) == (503, "starting")


def test_runner_that_polled_recently_is_healthy() -> None:
    status, _ = health(NOW - timedelta(seconds=POLL_INTERVAL_S), NOW)

    assert status == 200


def test_runner_that_missed_several_polls_is_unhealthy() -> None:
    stale = NOW - timedelta(seconds=(MISSED_POLLS + 1) * POLL_INTERVAL_S)

    status, body = health(stale, NOW)

    assert (status, body["status"]) == (503, "stale")

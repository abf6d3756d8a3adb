"""`mlops-lab traffic` against the running service, and when there is nothing to talk to."""

from __future__ import annotations

import sqlalchemy as sa

from platform_core.prediction_log import predictions
from platform_core.settings import Settings
from tests.serving.conftest import Platform
from tests.support import run_cli


def _counts(log_db) -> tuple[int, int]:
    query = sa.select(sa.func.count(), sa.func.count(predictions.c.label))
    with log_db.connect() as conn:
        total, labelled = conn.execute(query).one()
    return total, labelled


def test_traffic_sends_requests_and_labels(platform: Platform, log_db) -> None:
    total_before, labelled_before = _counts(log_db)
    result = run_cli(
        platform.settings,
        "traffic",
        "--rps", "20", "--duration", "2", "--scenario", "covariate_shift",
        "--feedback-rate", "1", "--seed", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "40/40 requests answered OK" in result.stderr
    assert "40 labels sent as feedback" in result.stderr
    total_after, labelled_after = _counts(log_db)
    assert total_after - total_before == 40
    assert labelled_after - labelled_before == 40


def test_traffic_says_what_to_do_when_serving_is_unreachable(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "traffic", "--duration", "1")
    assert result.returncode == 1
    assert "Serving is not reachable at http://127.0.0.1:" in result.stderr
    assert "make up" in result.stderr


def test_traffic_rejects_an_unknown_scenario_listing_the_known_ones(
    unstarted_settings: Settings,
) -> None:
    result = run_cli(unstarted_settings, "traffic", "--scenario", "tuesday")
    assert result.returncode == 1
    assert "Unknown scenario 'tuesday'" in result.stderr
    assert "covariate_shift" in result.stderr

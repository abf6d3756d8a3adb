"""`mlops-lab rollout start` refuses a start it cannot make sense of before it touches anything:
these need no platform (nothing answers on the settings' ports)."""

from __future__ import annotations

import pytest

from platform_core.settings import Settings
from tests.support import run_cli


def _said(result) -> str:
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("modes", [[], ["--shadow", "--canary", "10"]])
def test_start_needs_exactly_one_mode(unstarted_settings: Settings, modes: list[str]) -> None:
    result = run_cli(unstarted_settings, "rollout", "start", "2", *modes)

    assert result.returncode == 1
    assert "Say how to try the candidate: --shadow or --canary PCT" in _said(result)


@pytest.mark.parametrize("share", ["0", "150"])
def test_start_refuses_a_canary_share_outside_0_to_100(
    unstarted_settings: Settings, share: str
) -> None:
    result = run_cli(unstarted_settings, "rollout", "start", "2", "--canary", share)

    assert result.returncode == 1
    assert "more than 0 and at most 100 percent" in _said(result)


def test_status_says_when_mlflow_is_not_there(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "rollout", "status")

    assert result.returncode == 1
    assert f"MLflow is not reachable at {unstarted_settings.mlflow_url}" in _said(result)

"""Readiness follows the model, liveness follows the process."""

from __future__ import annotations

from tests.serving.conftest import Platform


def test_not_ready_without_a_champion_and_the_body_says_why(platform: Platform) -> None:
    response = platform.readiness_without_champion
    assert response.status_code == 503
    assert "no champion yet" in response.text
    assert f"{platform.settings.model_name!r}" in response.text
    assert "make train" in response.text


def test_alive_without_a_champion(platform: Platform) -> None:
    assert platform.liveness_without_champion.status_code == 200


def test_becomes_ready_by_itself_once_a_champion_exists(platform: Platform, http) -> None:
    assert http.get("/readyz").status_code == 200

"""Readiness follows the model, liveness follows the process.

Ready means: the champion is loaded, or the registry says no version is champion (nothing to
load, so a rollout on a fresh cluster completes). Not ready: a champion exists and is not loaded
here (loading, broken, or the registry unreachable), which keeps a rolling update's old pod."""

from __future__ import annotations

import mlflow

from serving.registry import ChampionWatcher
from tests.serving.conftest import Platform


def test_ready_without_a_champion_and_predict_says_why(platform: Platform) -> None:
    assert platform.readiness_without_champion.status_code == 200
    response = platform.prediction_without_champion
    assert response.status_code == 503
    assert "no champion yet" in response.text
    assert f"{platform.settings.model_name!r}" in response.text
    assert "make train" in response.text


def test_alive_without_a_champion(platform: Platform) -> None:
    assert platform.liveness_without_champion.status_code == 200


def test_ready_once_a_champion_is_loaded(platform: Platform, http) -> None:
    assert http.get("/readyz").status_code == 200


def test_not_ready_while_a_champion_exists_that_cannot_be_loaded(platform: Platform) -> None:
    """A champion whose artifacts are gone: the watcher has nothing loaded and knows there is
    something to load, so readiness stays false (a new pod would not take traffic)."""
    name = "readiness-broken-champion"
    client = mlflow.MlflowClient(platform.settings.mlflow_url)
    client.create_registered_model(name)
    run = client.create_run("0")
    version = client.create_model_version(name, f"{run.info.artifact_uri}/missing", run.info.run_id)
    client.set_registered_model_alias(name, platform.settings.champion_alias, version.version)
    broken = ChampionWatcher(platform.settings.model_copy(update={"model_name": name}))
    nothing = ChampionWatcher(platform.settings.model_copy(update={"model_name": "no-such-model"}))

    broken.poll()
    nothing.poll()

    assert broken.current is None and not broken.nothing_to_serve
    assert "failed to load" in broken.waiting_for
    assert nothing.current is None and nothing.nothing_to_serve

"""The retrain flow's edge cases, run in this process (the deployment path is tested apart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.flows import retrain, train
from platform_core import contract
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.pipelines.conftest import environment_of


def test_retrain_without_a_champion_says_to_train_first(in_process: Settings) -> None:
    with pytest.raises(PlatformError, match="has no champion yet"):
        retrain(reason="test")

    assert contract.champion(contract.client_for(in_process), in_process) is None


def test_retrain_without_a_prediction_log_trains_on_the_reference_alone(
    fresh: Settings, prefect_api: None, tmp_path: Path
) -> None:
    settings = fresh.model_copy(
        update={"prediction_log_url": SecretStr(f"sqlite:///{tmp_path / 'never-written.db'}")}
    )
    with environment_of(settings):
        train(rows=1000)
        outcome = retrain(reason="no traffic yet")

    assert outcome.version == "2"  # registered all the same
    assert outcome.rows == 1000  # the champion's reference sample: all of its 1,000 rows
    assert outcome.data_source == "retrain:no traffic yet"

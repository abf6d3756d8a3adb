"""A worse challenger: trained on shuffled labels, it is registered but the gate keeps it out.

The flow runs in this process (as `mlops-lab train` runs it); the CLI's printing of the result
line is tested with the first model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines import data, registry
from pipelines.flows import TrainOutcome, train
from platform_core import contract
from platform_core.settings import Settings
from tests.pipelines.conftest import Trained, environment_of


@pytest.fixture(scope="module")
def champion_before(platform: Settings, first_train: Trained) -> str:
    champion = contract.champion(contract.client_for(platform), platform)
    assert champion is not None
    return champion.version


@pytest.fixture(scope="module")
def worse(
    platform: Settings,
    prefect_api: None,
    champion_before: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> TrainOutcome:
    frame = data.generate(3000, seed=7)
    # Same features, labels unrelated to them: nothing left to learn.
    frame[data.TARGET] = np.random.default_rng(7).permutation(frame[data.TARGET].to_numpy())
    path = Path(tmp_path_factory.mktemp("shuffled")) / "shuffled.csv"
    frame.to_csv(path, index=False)
    with environment_of(platform):
        return train(data=str(path), target=data.TARGET)


def test_worse_challenger_is_registered(platform: Settings, worse: TrainOutcome) -> None:
    version = contract.client_for(platform).get_model_version(platform.model_name, worse.version)

    assert version.tags[contract.TAG_DATA_SOURCE] == "file:shuffled.csv"


def test_worse_challenger_is_not_promoted(
    platform: Settings, champion_before: str, worse: TrainOutcome
) -> None:
    client = contract.client_for(platform)
    champion = contract.champion(client, platform)
    challenger = contract.version_by_alias(client, platform, platform.challenger_alias)

    assert worse.promoted is False
    assert champion is not None and champion.version == champion_before
    assert challenger is not None and challenger.version == worse.version


def test_rejection_reason_compares_with_the_champion_on_the_same_rows(worse: TrainOutcome) -> None:
    reason = worse.reason

    assert "is below the floor 0.700" in reason
    assert "on the same held-out rows" in reason


def test_rejection_reason_is_recorded_on_version_and_run(
    platform: Settings, worse: TrainOutcome
) -> None:
    client = contract.client_for(platform)
    version = client.get_model_version(platform.model_name, worse.version)
    assert version.run_id is not None, "the pipeline registers every version from its run"
    run = client.get_run(version.run_id)

    assert version.tags[registry.TAG_GATE_DECISION] == "rejected"
    assert version.tags[registry.TAG_GATE_REASON] == worse.reason
    assert run.data.tags["gate.reason"] == worse.reason


def test_rejection_reason_is_in_the_one_line_result(worse: TrainOutcome) -> None:
    line = worse.summary()

    assert line.startswith(f"{worse.model_name} v{worse.version} (AUC ")
    assert f"kept as challenger: {worse.reason}" in line


def test_model_list_json_shows_why_the_challenger_was_rejected(
    platform: Settings, worse: TrainOutcome
) -> None:
    rows = registry.list_versions(contract.client_for(platform), platform)
    row = next(row for row in rows if row.version == worse.version)
    assert row.gate_decision == "rejected"
    assert row.to_dict()["gate_reason"] == worse.reason

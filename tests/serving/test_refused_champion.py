"""A champion the platform does not trust is refused: the last good model keeps answering, and
the refusal shows (one log line, ``serving_model_refused``) until the alias moves on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines import data
from platform_core import contract
from serving.schema import records_from_frame
from tests.models import TYPES, TouchOnLoad, register_foreign_model, set_champion
from tests.serving.conftest import Platform, metric
from tests.support import wait_for

RECORDS = records_from_frame(data.generate(3, seed=81), TYPES.names)


@dataclass(frozen=True)
class Refused:
    version: str
    # The file the model's unpickling would create, in whichever process loaded it.
    marker: Path


@pytest.fixture(scope="module")
def refused(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refused]:
    settings = platform.settings
    marker = tmp_path_factory.mktemp("refused-champion") / "unpickled"
    version = register_foreign_model(settings, TouchOnLoad(marker), "cloudpickle")
    set_champion(settings, version)
    try:
        wait_for(
            lambda: metric(platform.url, "serving_model_refused") == float(version),
            settings.alias_poll_interval_s + 30,
            what=f"serving to refuse version {version}",
            log=settings.paths.log_file("serving"),
        )
        yield Refused(version, marker)
    finally:
        set_champion(settings, platform.v1)
        wait_for(
            lambda: metric(platform.url, "serving_model_refused") == 0.0,
            settings.alias_poll_interval_s + 30,
            what="serving to clear the refusal once the alias moved back",
        )


def test_a_refused_champion_leaves_the_last_good_model_answering(
    refused: Refused, platform: Platform, http
) -> None:
    response = http.post("/predict", json={"records": RECORDS})

    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == platform.v1


def test_serving_stays_ready_with_a_refused_champion(refused: Refused, http) -> None:
    assert http.get("/readyz").status_code == 200


def test_the_refused_models_code_never_runs(refused: Refused) -> None:
    assert not refused.marker.exists()


def test_the_refusal_is_logged_once_with_its_reason(refused: Refused, platform: Platform) -> None:
    # Nothing to poll for when proving a retry does not happen: three polls' time instead.
    time.sleep(3 * platform.settings.alias_poll_interval_s)
    uri = contract.model_uri(platform.settings, version=refused.version)
    log = platform.settings.paths.log_file("serving").read_text()

    [line] = [line for line in log.splitlines() if f"Refusing to load {uri}:" in line]
    assert "it is serialized as 'cloudpickle'" in line
    assert f"still serving version {platform.v1}" in line

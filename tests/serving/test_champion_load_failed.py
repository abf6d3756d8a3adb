"""A champion whose files are gone from the artifact store: serving keeps answering with the
model it had, says which version fails (``serving_champion_load_failed``, one log line), and
takes the version as soon as its files are back, with no restart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES, register_model, set_champion
from tests.serving.conftest import Platform, metric, wait_until_serving
from tests.support import wait_for

RECORDS = records_from_frame(data.generate(3, seed=82), TYPES.names)


def _model_folder(platform: Platform, version: str) -> Path:
    client = MlflowClient(platform.settings.mlflow_url)
    location = client.get_model_version_download_uri(platform.settings.model_name, version)
    return platform.settings.paths.mlflow / "artifacts" / location.split(":/", 1)[1].lstrip("/")


@dataclass(frozen=True)
class Missing:
    version: str
    folder: Path  # where the version's files belong
    kept: Path  # where they were moved


@pytest.fixture(scope="module")
def missing(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Missing]:
    settings = platform.settings
    version = str(register_model(settings, seed=5).version)
    folder = _model_folder(platform, version)
    kept = tmp_path_factory.mktemp("moved-away") / "model"
    shutil.move(folder, kept)
    set_champion(settings, version)
    try:
        wait_for(
            lambda: metric(platform.url, "serving_champion_load_failed") == float(version),
            settings.alias_poll_interval_s + 30,
            what=f"serving to fail loading version {version}",
            log=settings.paths.log_file("serving"),
        )
        yield Missing(version, folder, kept)
    finally:
        if not folder.exists():
            shutil.move(kept, folder)
        set_champion(settings, platform.v1)
        wait_until_serving(settings, platform.v1)


def test_the_model_it_had_keeps_answering_and_serving_stays_ready(
    missing: Missing, platform: Platform, http
) -> None:
    response = http.post("/predict", json={"records": RECORDS})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == platform.v1
    assert http.get("/readyz").status_code == 200


def test_the_failure_is_logged_once_naming_the_version(
    missing: Missing, platform: Platform
) -> None:
    # Nothing to poll for when proving a line is not repeated: three polls' time instead.
    time.sleep(3 * platform.settings.alias_poll_interval_s)
    log = platform.settings.paths.log_file("serving").read_text()
    lines = [line for line in log.splitlines() if f"(version {missing.version})" in line]
    assert len(lines) == 1, lines
    assert f"still serving version {platform.v1}" in lines[0]


# Last in the module: it ends the incident the fixture set up.
def test_the_version_is_served_once_its_files_are_back(
    missing: Missing, platform: Platform
) -> None:
    shutil.move(missing.kept, missing.folder)
    wait_until_serving(platform.settings, missing.version)
    assert metric(platform.url, "serving_champion_load_failed") == 0.0

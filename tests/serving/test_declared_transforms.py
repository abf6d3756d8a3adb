"""The feature transforms serving applies are declared by the model version, as a registry tag:
a change of the tag on the served version takes effect at the next poll, without a restart or a
new version; a tag serving cannot apply is refused (one error line naming the version and the
tag, ``serving_feature_transforms_invalid``) and the transforms it had are kept."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from mlops_lab.runtime.local.runtime import LocalRuntime
from pipelines import data
from platform_core import contract
from platform_core import rollout as rollout_state
from platform_core.prediction_log import predictions
from serving.schema import records_from_frame
from tests.models import TYPES, set_champion
from tests.serving.conftest import Platform, metric, wait_until_serving
from tests.support import run_cli, wait_for

TAG = contract.TAG_SERVING_TRANSFORMS
RECORDS = records_from_frame(data.generate(5, seed=131), TYPES.names)
# The same applications with income as a model would see it after `annual_income:log1p`.
LOGGED_INCOME = [{**r, "annual_income": math.log1p(r["annual_income"])} for r in RECORDS]
SCALED_INCOME = [{**r, "annual_income": r["annual_income"] * 0.5} for r in RECORDS]


def _answer(http: httpx.Client, records: list[dict]) -> dict:
    response = http.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    return response.json()


def _probabilities(http: httpx.Client, records: list[dict]) -> list[float]:
    return _answer(http, records)["probabilities"]


def _serving_pid(platform: Platform) -> int | None:
    return LocalRuntime(platform.settings).processes()["serving"].pid


def _tag(platform: Platform, version: str, value: str | None) -> None:
    client = contract.client_for(platform.settings)
    if value is None:
        client.delete_model_version_tag(platform.settings.model_name, version, TAG)
    else:
        client.set_model_version_tag(platform.settings.model_name, version, TAG, value)


def _answers_like(http: httpx.Client, expected: list[float], what: str, platform: Platform) -> None:
    wait_for(
        lambda: _probabilities(http, RECORDS) == pytest.approx(expected, abs=1e-12),
        platform.settings.alias_poll_interval_s + 30,
        what=what,
        log=platform.settings.paths.log_file("serving"),
    )


@pytest.fixture
def untagged(platform: Platform, http: httpx.Client) -> Iterator[list[float]]:
    """v1 serving with no declared transform; whatever a test tags, it is untagged again after.
    Yields v1's answers to RECORDS as they are."""
    plain = _probabilities(http, RECORDS)
    try:
        yield plain
    finally:
        settings = platform.settings
        client = contract.client_for(settings)
        if rollout_state.candidate(client, settings) is not None:
            client.delete_registered_model_alias(settings.model_name, settings.candidate_alias)
        for version in (platform.v1, platform.v2):
            _tag(platform, version, None)
        set_champion(platform.settings, platform.v1)
        wait_until_serving(platform.settings, platform.v1)
        _answers_like(http, plain, "serving back to v1 with no transform", platform)
        wait_for(
            lambda: metric(platform.url, "serving_feature_transforms_invalid") == 0.0,
            30,
            what="no refused transforms",
        )


def test_a_transform_the_served_version_declares_applies_without_a_restart(
    untagged: list[float], platform: Platform, http: httpx.Client, log_db
) -> None:
    pid = _serving_pid(platform)
    assert pid is not None
    as_if_logged = _probabilities(http, LOGGED_INCOME)
    assert as_if_logged != pytest.approx(untagged, abs=1e-6)  # the transform matters

    _tag(platform, platform.v1, "annual_income:log1p")
    _answers_like(http, as_if_logged, "serving to apply v1's declared transform", platform)
    answer = _answer(http, RECORDS)
    assert answer["model_version"] == platform.v1

    # The log keeps the features as received, not as the model saw them.
    http.post("/feedback", json={"labels": [{"request_id": answer["request_id"], "label": 0}]})
    query = sa.select(predictions.c.features).where(
        predictions.c.request_id == answer["request_id"]
    )
    with log_db.connect() as conn:
        logged = [json.loads(row.features) for row in conn.execute(query)]
    assert [row["annual_income"] for row in logged] == [r["annual_income"] for r in RECORDS]

    _tag(platform, platform.v1, None)
    _answers_like(http, untagged, "serving to drop the transform once the tag is gone", platform)
    assert _serving_pid(platform) == pid


def test_a_tag_serving_cannot_apply_is_refused_and_the_transforms_it_had_kept(
    untagged: list[float], platform: Platform, http: httpx.Client
) -> None:
    halved = _probabilities(http, SCALED_INCOME)
    _tag(platform, platform.v1, "annual_income:x0.5")
    _answers_like(http, halved, "serving to apply v1's declared transform", platform)

    _tag(platform, platform.v1, "annual_income:cube")
    wait_for(
        lambda: metric(platform.url, "serving_feature_transforms_invalid") == float(platform.v1),
        platform.settings.alias_poll_interval_s + 30,
        what="serving to refuse the unreadable tag",
        log=platform.settings.paths.log_file("serving"),
    )

    # Nothing to poll for when proving a retry does not happen: three polls' time instead.
    time.sleep(3 * platform.settings.alias_poll_interval_s)
    assert _probabilities(http, RECORDS) == pytest.approx(halved, abs=1e-12)
    assert http.get("/readyz").status_code == 200
    log = platform.settings.paths.log_file("serving").read_text().splitlines()
    refusals = [
        line for line in log if "Refusing the serving transforms" in line and "cube" in line
    ]
    assert len(refusals) == 1, refusals  # once, not once per poll
    assert f"version {platform.v1} declares {TAG}='annual_income:cube'" in refusals[0]
    assert "still applying annual_income:x0.5" in refusals[0]


def test_a_new_champion_whose_tag_serving_cannot_apply_is_not_loaded(
    untagged: list[float], platform: Platform, http: httpx.Client
) -> None:
    _tag(platform, platform.v2, "no_such_feature:log1p")
    set_champion(platform.settings, platform.v2)
    wait_for(
        lambda: metric(platform.url, "serving_feature_transforms_invalid") == float(platform.v2),
        platform.settings.alias_poll_interval_s + 30,
        what="serving to refuse v2's tag",
        log=platform.settings.paths.log_file("serving"),
    )

    answer = _answer(http, RECORDS)
    assert answer["model_version"] == platform.v1
    assert answer["probabilities"] == pytest.approx(untagged, abs=1e-12)

    # Corrected on the version: v2 is loaded at the next poll.
    _tag(platform, platform.v2, None)
    wait_until_serving(platform.settings, platform.v2)
    assert metric(platform.url, "serving_feature_transforms_invalid") == 0.0


def test_a_canary_candidate_applies_what_its_own_version_declares(
    untagged: list[float], platform: Platform, http: httpx.Client
) -> None:
    started = run_cli(platform.settings, "rollout", "start", platform.v2, "--canary", "100")
    assert started.returncode == 0, started.stderr
    wait_for(
        lambda: metric(platform.url, "serving_candidate_version") == float(platform.v2),
        platform.settings.alias_poll_interval_s + 60,
        what="serving to load the candidate",
        log=platform.settings.paths.log_file("serving"),
    )
    assert _answer(http, RECORDS)["model_version"] == platform.v2
    plain = _probabilities(http, RECORDS)
    as_if_logged = _probabilities(http, LOGGED_INCOME)

    _tag(platform, platform.v2, "annual_income:log1p")
    _answers_like(http, as_if_logged, "the candidate to apply its declared transform", platform)
    assert _answer(http, RECORDS)["model_version"] == platform.v2

    _tag(platform, platform.v2, None)
    _answers_like(http, plain, "the candidate to drop it once the tag is gone", platform)

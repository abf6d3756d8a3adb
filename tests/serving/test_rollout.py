"""A rollout against the real processes: `mlops-lab rollout` writes the registry, serving follows.

Version 1 is the champion and version 2 the candidate. Each test starts its own rollout with the
CLI and leaves none behind (the ``no_rollout`` fixture ends it and puts the champion back).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipelines import data, rollout
from platform_core import contract
from platform_core import rollout as state
from platform_core.prediction_log import (
    ROLE_CANARY,
    ROLE_CHAMPION,
    ROLE_SHADOW,
    predictions,
    shadow_request_id,
)
from serving.schema import records_from_frame
from tests.models import TYPES, TouchOnLoad, register_foreign_model, set_champion
from tests.serving.conftest import Platform, metric, restart_serving, wait_until_serving
from tests.support import run_cli, wait_for

RECORDS = records_from_frame(data.generate(200, seed=91), TYPES.names)


def _said(result) -> str:
    """What a command printed on stderr, on one line: Rich wraps long messages."""
    return " ".join(result.stderr.split())


def _client(platform: Platform):
    return contract.client_for(platform.settings)


def _rollout(platform: Platform, *args: str) -> str:
    """Run `mlops-lab rollout ARGS`, which must succeed; its stderr (progress and result)."""
    result = run_cli(platform.settings, "rollout", *args, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


def _start(platform: Platform, plan: state.Plan) -> None:
    """Start a rollout of v2 in this process: for the tests about what serving does with one
    (the CLI's own behaviour is tested with the CLI, here and in test_rollout_cli.py)."""
    from pipelines import rollout

    settings = platform.settings
    rollout.start(_client(platform), settings, platform.v2, plan, by="rollout start (test)")


def _wait_for_candidate(platform: Platform, version: str, percent: float = 0.0) -> None:
    """Until serving has ``version`` loaded as the candidate (0: none) with this canary share."""
    wait_for(
        lambda: (
            metric(platform.url, "serving_candidate_version") == float(version)
            and metric(platform.url, "serving_canary_percent") == percent
        ),
        platform.settings.alias_poll_interval_s + 60,
        what=f"serving to load candidate {version} (canary {percent:g}%)",
        log=platform.settings.paths.log_file("serving"),
    )


@pytest.fixture
def no_rollout(platform: Platform) -> Iterator[None]:
    """No rollout before or after the test, and version 1 the champion."""
    client = _client(platform)
    yield
    settings = platform.settings
    if state.candidate(client, settings) is not None:
        client.delete_registered_model_alias(settings.model_name, settings.candidate_alias)
    set_champion(settings, platform.v1)
    wait_until_serving(settings, platform.v1)
    _wait_for_candidate(platform, "0")


def _predict(http: httpx.Client, key: str | None = None, index: int = 0) -> dict:
    body: dict = {"records": [RECORDS[index % len(RECORDS)]]}
    if key is not None:
        body["applicant_key"] = key
    response = http.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _rows(platform: Platform, request_ids: list[str]) -> list:
    query = sa.select(predictions).where(predictions.c.request_id.in_(request_ids))
    with platform.log_db.connect() as conn:
        return list(conn.execute(query))


def _within_binomial_bound(hits: int, n: int, share: float) -> bool:
    """Within 4.5 standard deviations: a false failure about once in 150,000 runs."""
    return abs(hits - n * share) <= 4.5 * math.sqrt(n * share * (1 - share))


def test_in_shadow_the_champion_answers_and_the_candidate_is_logged_as_shadow(
    platform: Platform, http, no_rollout
) -> None:
    _start(platform, state.Plan(state.SHADOW))
    _wait_for_candidate(platform, platform.v2)

    answers = [_predict(http, index=i) for i in range(30)]
    ids = [a["request_id"] for a in answers]
    shadow_ids = [shadow_request_id(i) for i in ids]
    rows = wait_for(
        lambda: (found := _rows(platform, ids + shadow_ids)) and len(found) == 60 and found,
        30,
        what="the answers and their shadow rows to be logged",
    )

    assert {a["model_version"] for a in answers} == {platform.v1}
    assert {(r.role, r.model_version) for r in rows if r.request_id in ids} == {
        (ROLE_CHAMPION, platform.v1)
    }
    assert {(r.role, r.model_version) for r in rows if r.request_id in shadow_ids} == {
        (ROLE_SHADOW, platform.v2)
    }


def test_a_label_sent_at_once_reaches_the_shadow_row_too(
    platform: Platform, http, no_rollout
) -> None:
    _start(platform, state.Plan(state.SHADOW))
    _wait_for_candidate(platform, platform.v2)

    request_id = _predict(http)["request_id"]
    stored = http.post("/feedback", json={"labels": [{"request_id": request_id, "label": 1}]})

    assert stored.json()["stored"] == 1
    rows = _rows(platform, [request_id, shadow_request_id(request_id)])
    assert sorted((r.role, r.label) for r in rows) == [(ROLE_CHAMPION, 1), (ROLE_SHADOW, 1)]


def test_a_canary_answers_its_share_of_1000_requests(platform: Platform, http, no_rollout) -> None:
    _start(platform, state.Plan.canary(20))
    _wait_for_candidate(platform, platform.v2, percent=20)

    answers = [_predict(http, index=i) for i in range(1_000)]
    by_candidate = [a["request_id"] for a in answers if a["model_version"] == platform.v2]
    http.post("/feedback", json={"labels": [{"request_id": answers[0]["request_id"], "label": 0}]})

    assert {a["model_version"] for a in answers} == {platform.v1, platform.v2}
    assert _within_binomial_bound(len(by_candidate), 1_000, 0.2), len(by_candidate)
    assert {r.role for r in _rows(platform, by_candidate)} == {ROLE_CANARY}


def test_a_canary_is_sticky_per_applicant_key(platform: Platform, http, no_rollout) -> None:
    _start(platform, state.Plan.canary(50))
    _wait_for_candidate(platform, platform.v2, percent=50)

    versions = {
        key: {_predict(http, key=key, index=i)["model_version"] for i in range(5)}
        for key in (f"applicant-{n}" for n in range(40))
    }

    assert all(len(seen) == 1 for seen in versions.values()), versions
    assert set().union(*versions.values()) == {platform.v1, platform.v2}


def test_promote_makes_the_candidate_champion_without_loading_it_again(
    platform: Platform, http, no_rollout
) -> None:
    client = _client(platform)
    _start(platform, state.Plan(state.SHADOW))
    _wait_for_candidate(platform, platform.v2)

    _rollout(platform, "promote", "--reason", "shadow agreed")
    wait_until_serving(platform.settings, platform.v2)
    _wait_for_candidate(platform, "0")

    assert contract.champion(client, platform.settings).version == platform.v2  # pyright: ignore[reportOptionalMemberAccess]
    assert state.candidate(client, platform.settings) is None
    tags = client.get_model_version(platform.settings.model_name, platform.v2).tags
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_REASON]) == (state.PROMOTED, "shadow agreed")
    assert _predict(http)["model_version"] == platform.v2
    log = platform.settings.paths.log_file("serving").read_text()
    assert "promoted from the rollout, already loaded" in log


def test_abort_ends_the_rollout_and_records_why(platform: Platform, http, no_rollout) -> None:
    _start(platform, state.Plan.canary(50))
    _wait_for_candidate(platform, platform.v2, percent=50)

    _rollout(platform, "abort", "--reason", "p99 too high")
    _wait_for_candidate(platform, "0")
    status = run_cli(platform.settings, "rollout", "status", "--json")

    assert {_predict(http, key=f"k{i}")["model_version"] for i in range(20)} == {platform.v1}
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["rollout"] is None
    assert document["last_ended"]["version"] == platform.v2
    assert document["last_ended"]["outcome"] == state.ABORTED
    assert document["last_ended"]["reason"] == "p99 too high"


def test_aborting_under_load_fails_no_request(platform: Platform, no_rollout) -> None:
    _start(platform, state.Plan.canary(50))
    _wait_for_candidate(platform, platform.v2, percent=50)
    answers: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def send(offset: int) -> None:
        with httpx.Client(base_url=platform.url, timeout=30) as client:
            index = offset
            while not stop.is_set():
                response = client.post("/predict", json={"records": [RECORDS[index % 200]]})
                version = response.json().get("model_version") if response.is_success else None
                answers.append((time.monotonic(), response.status_code, version))
                index += 4

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(answers) > 50, 30, what="load to start")
        _rollout(platform, "abort")
        _wait_for_candidate(platform, "0")
        over = time.monotonic()
        wait_for(lambda: any(at > over for at, _, _ in answers), 10, what="answers after abort")
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    failed = [a for a in answers if a[1] != 200]
    assert not failed, f"{len(failed)} of {len(answers)} failed, e.g. {failed[:3]}"
    assert {version for at, _, version in answers if at > over} == {platform.v1}


def test_a_serving_restart_keeps_the_rollout(platform: Platform, http, no_rollout) -> None:
    _start(platform, state.Plan.canary(100))
    _wait_for_candidate(platform, platform.v2, percent=100)

    restart_serving(platform)
    _wait_for_candidate(platform, platform.v2, percent=100)

    assert _predict(http)["model_version"] == platform.v2


def test_status_shows_the_rollout_and_what_serving_has_loaded(platform: Platform, no_rollout):
    _start(platform, state.Plan.canary(5))
    _wait_for_candidate(platform, platform.v2, percent=5)

    result = run_cli(platform.settings, "rollout", "status", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["champion"] == platform.v1
    assert document["rollout"]["version"] == platform.v2
    assert (document["rollout"]["mode"], document["rollout"]["percent"]) == ("canary", 5)
    assert "rollout start" in document["rollout"]["started_by"]
    assert document["serving"]["candidate"] == platform.v2
    rolled_out = f"v{platform.v2} is being rolled out (canary 5%) beside champion v{platform.v1}"
    assert rolled_out in _said(result)
    assert document["rollout"]["last_check"] is None

    # What the rollout-decision flow said last is on the candidate, and status shows it.
    client = contract.client_for(platform.settings)
    rollout.record_check(
        client, platform.settings, platform.v2, "extend", ("candidate scored 3 records of 500",)
    )
    checked = run_cli(platform.settings, "rollout", "status", "--json")
    last = json.loads(checked.stdout)["rollout"]["last_check"]
    assert (last["decision"], last["reasons"]) == ("extend", "candidate scored 3 records of 500")
    shown = _said(run_cli(platform.settings, "rollout", "status"))
    assert f"Automatic decision at {last['at']}: extend: candidate scored 3" in shown


def test_the_champion_cannot_be_the_candidate(platform: Platform, no_rollout) -> None:
    result = run_cli(platform.settings, "rollout", "start", platform.v1, "--shadow")

    assert result.returncode == 1
    assert f"v{platform.v1} is already the champion" in _said(result)
    assert state.candidate(_client(platform), platform.settings) is None


@pytest.fixture(scope="module")
def untrusted(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A version serialized with cloudpickle, and the file its unpickling would create."""
    marker = tmp_path_factory.mktemp("untrusted-candidate") / "unpickled"
    return register_foreign_model(platform.settings, TouchOnLoad(marker), "cloudpickle"), marker


def test_a_second_candidate_is_refused_while_one_is_rolled_out(
    platform: Platform, untrusted: tuple[str, Path], no_rollout
) -> None:
    _rollout(platform, "start", platform.v2, "--shadow")

    result = run_cli(platform.settings, "rollout", "start", untrusted[0], "--canary", "10")

    assert result.returncode == 1
    assert f"v{platform.v2} is being rolled out (shadow); one candidate at a time" in _said(result)
    assert state.current(_client(platform), platform.settings).version == platform.v2  # pyright: ignore[reportOptionalMemberAccess]


def test_start_refuses_a_version_the_platform_does_not_trust(
    platform: Platform, untrusted: tuple[str, Path], no_rollout
) -> None:
    version, marker = untrusted

    result = run_cli(platform.settings, "rollout", "start", version, "--shadow")

    assert result.returncode == 1
    assert "serialized as 'cloudpickle'" in _said(result)
    assert "nothing was changed" in _said(result)
    assert state.candidate(_client(platform), platform.settings) is None
    assert not marker.exists()


def test_serving_aborts_the_rollout_of_a_candidate_it_refuses(
    platform: Platform, http, untrusted: tuple[str, Path], no_rollout
) -> None:
    """The alias set by hand (the MLflow UI), past the CLI's check."""
    version, marker = untrusted
    settings = platform.settings
    client = _client(platform)
    aborts = metric(platform.url, "serving_rollout_aborts_total") or 0.0
    for key, value in state.Plan.canary(100).tags().items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    client.set_registered_model_alias(settings.model_name, settings.candidate_alias, version)

    wait_for(
        lambda: state.candidate(client, settings) is None,
        settings.alias_poll_interval_s + 60,
        what="serving to abort the rollout",
        log=settings.paths.log_file("serving"),
    )

    tags = client.get_model_version(settings.model_name, version).tags
    assert tags[state.TAG_OUTCOME] == state.ABORTED
    assert "serialized as 'cloudpickle'" in tags[state.TAG_REASON]
    assert metric(platform.url, "serving_rollout_aborts_total") == aborts + 1
    assert _predict(http)["model_version"] == platform.v1
    assert not marker.exists()

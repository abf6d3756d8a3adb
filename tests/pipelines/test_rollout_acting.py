"""Carrying out the automatic rollout decision in a real MLflow registry, and the flow around it.

The acting part takes a Decision, so these tests need no live evidence; the flow tests give it
made-up evidence, except the last two, which need the analysis itself
(platform_core.rollout_analysis.analyse).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipelines import registry, rollout
from pipelines.rollout_check import BY, act, candidate_alias_set, rollout_decision
from pipelines.rollout_decision import ABORT, EXTEND, PROMOTE, Decision
from platform_core import contract, rollout_analysis
from platform_core import rollout as state
from platform_core.settings import Settings
from tests.pipelines.conftest import environment_of, with_own_model
from tests.pipelines.test_registry import register_versions
from tests.pipelines.test_rollout_decision import analysis as passing_analysis

REASONS = ("first reason naming a figure", "second reason naming a rule")


@pytest.fixture(scope="module")
def own(platform: Settings) -> Settings:
    """A model with two versions."""
    settings = with_own_model(platform)
    register_versions(settings, 2)
    return settings


@pytest.fixture
def client(own: Settings):
    """v1 champion, v2 in shadow beside it, as a fresh rollout."""
    client = contract.client_for(own)
    registry.promote(client, own, "1", by="test")
    if state.current(client, own) is not None:
        rollout.abort(client, own, by="test", reason="the next test starts afresh")
    rollout.start(client, own, "2", state.Plan(state.SHADOW), by="test")
    return client


def tags_of(client, settings: Settings, version: str) -> dict[str, str]:
    return client.get_model_version(settings.model_name, version).tags


def test_a_promote_decision_makes_the_candidate_champion_recording_why(
    own: Settings, client
) -> None:
    running = state.current(client, own)
    assert running is not None

    acted = act(client, own, running, Decision(PROMOTE, REASONS))

    assert acted.outcome == "promoted"
    assert contract.champion(client, own).version == "2"  # pyright: ignore[reportOptionalMemberAccess]
    assert state.current(client, own) is None
    tags = tags_of(client, own, "2")
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_ENDED_BY]) == (state.PROMOTED, BY)
    assert all(reason in tags[state.TAG_REASON] for reason in REASONS)
    assert tags[rollout.TAG_LAST_DECISION] == PROMOTE
    # Through the gate's registry code: the champion history rollback walks has it.
    assert registry.history(client, own)[-2:] == ["1", "2"]


def test_an_abort_decision_removes_the_candidate_recording_why(own: Settings, client) -> None:
    running = state.current(client, own)
    assert running is not None

    acted = act(client, own, running, Decision(ABORT, REASONS))

    assert acted.outcome == "aborted"
    assert contract.champion(client, own).version == "1"  # pyright: ignore[reportOptionalMemberAccess]
    assert state.current(client, own) is None
    tags = tags_of(client, own, "2")
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_ENDED_BY]) == (state.ABORTED, BY)
    assert REASONS[0] in tags[state.TAG_REASON]


def test_an_extend_decision_keeps_the_rollout_and_records_the_check(own: Settings, client) -> None:
    running = state.current(client, own)
    assert running is not None

    acted = act(client, own, running, Decision(EXTEND, REASONS))

    assert acted.outcome == "extended"
    after = state.current(client, own)
    assert after is not None and (after.version, after.plan) == (running.version, running.plan)
    assert after.last_decision == EXTEND and after.last_reasons == "; ".join(REASONS)
    tags = tags_of(client, own, "2")
    assert tags[rollout.TAG_LAST_DECISION] == EXTEND
    assert tags[rollout.TAG_LAST_REASONS] == "; ".join(REASONS)
    checked = datetime.fromisoformat(tags[rollout.TAG_LAST_CHECKED_AT])
    assert abs(datetime.now(UTC) - checked) < timedelta(minutes=1)
    assert state.TAG_OUTCOME not in tags


def test_a_decision_about_a_rollout_that_was_restarted_since_does_nothing(
    own: Settings, client
) -> None:
    running = state.current(client, own)
    assert running is not None
    earlier = state.Rollout(
        running.version, running.plan, "2026-01-01T00:00:00+00:00", running.started_by
    )

    acted = act(client, own, earlier, Decision(ABORT, REASONS))

    assert acted.outcome == "skipped"
    assert state.current(client, own) == running
    assert rollout.TAG_LAST_DECISION not in tags_of(client, own, "2")


def test_trying_a_version_again_clears_the_last_check_of_its_earlier_rollout(
    own: Settings, client
) -> None:
    running = state.current(client, own)
    assert running is not None
    act(client, own, running, Decision(EXTEND, REASONS))
    rollout.abort(client, own, by="test", reason="by hand")

    rollout.start(client, own, "2", state.Plan.canary(10), by="test")

    assert not set(rollout.CHECK_TAGS) & set(tags_of(client, own, "2"))


@contextmanager
def flows_reading(settings: Settings) -> Iterator[None]:
    """Flows called in this process read ``settings``; their log lines reach Prefect before
    the test ends (queued ones would be sent at exit, to a server stopped by then)."""
    from prefect.logging.handlers import APILogHandler

    with environment_of(settings):
        try:
            yield
        finally:
            APILogHandler().flush()


@pytest.fixture
def flow_environment(own: Settings, prefect_api: None) -> Iterator[Settings]:
    with flows_reading(own):
        yield own


def test_the_flow_does_nothing_without_a_rollout_in_progress(
    flow_environment: Settings, client
) -> None:
    rollout.abort(client, flow_environment, by="test", reason="none in progress")

    assert rollout_decision() == "no rollout in progress"
    assert rollout.TAG_LAST_DECISION not in tags_of(client, flow_environment, "2")


def test_the_flow_acts_on_what_the_analysis_says(
    flow_environment: Settings, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow's wiring (analysis -> decision -> registry), with evidence made up to pass every
    rule: the analysis itself is another module's, tested there."""
    running = state.current(client, flow_environment)
    seen = []

    def passing_evidence(settings, client, engine, prometheus=True):
        seen.append(engine.url.render_as_string(hide_password=True))
        return replace(passing_analysis(), rollout=running)

    monkeypatch.setattr(rollout_analysis, "analyse", passing_evidence)

    result = rollout_decision()

    assert seen == [flow_environment.prediction_log_db_url]
    assert result.startswith("v2 promoted: candidate scored 1000 records")
    assert contract.champion(client, flow_environment).version == "2"  # pyright: ignore[reportOptionalMemberAccess]
    tags = tags_of(client, flow_environment, "2")
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_ENDED_BY]) == (state.PROMOTED, BY)


def test_the_cheap_look_for_a_rollout_sees_the_candidate_alias(own: Settings, client) -> None:
    assert candidate_alias_set(own) is True

    rollout.abort(client, own, by="test", reason="gone")

    assert candidate_alias_set(own) is False
    assert candidate_alias_set(with_own_model(own)) is False  # a model not registered yet


def test_the_flow_extends_a_fresh_rollout_without_evidence_saying_what_it_waits_for(
    flow_environment: Settings, client
) -> None:
    rollout_decision()

    tags = tags_of(client, flow_environment, "2")
    assert state.current(client, flow_environment) is not None
    assert tags[rollout.TAG_LAST_DECISION] == EXTEND
    assert "candidate scored 0 records" in tags[rollout.TAG_LAST_REASONS]


def test_the_flow_aborts_a_rollout_undecided_past_the_age_limit(
    own: Settings, prefect_api: None, client
) -> None:
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    client.set_model_version_tag(own.model_name, "2", state.TAG_STARTED_AT, two_hours_ago)

    with flows_reading(own.model_copy(update={"rollout_max_age_s": 3_600.0})):
        rollout_decision()

    assert state.current(client, own) is None
    tags = tags_of(client, own, "2")
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_ENDED_BY]) == (state.ABORTED, BY)
    assert "no decision within 1h" in tags[state.TAG_REASON]

"""Moving the champion by hand: promote, rollback, and the history rollback trusts."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines import data, registry, sources, training
from platform_core import contract
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.pipelines.conftest import with_own_model
from tests.support import run_cli


def register_versions(settings: Settings, count: int) -> None:
    """The same small fit, registered ``count`` times."""
    frame = data.generate(400, seed=5)
    types = sources.generated_types()
    parts = training.split(frame, types, seed=5)
    model = training.build_pipeline(types, seed=5).fit(parts.X_train, parts.y_train)
    metrics = training.evaluate(model, parts.X_test, parts.y_test)
    reference = training.reference_sample(frame, 100, seed=5)
    for _ in range(count):
        training.log_and_register(settings, model, parts, types, metrics, reference, tags={})


@pytest.fixture(scope="module")
def own(platform: Settings) -> Settings:
    """A model with three versions."""
    settings = with_own_model(platform)
    register_versions(settings, 3)
    return settings


@pytest.fixture
def client(own: Settings):
    """The registry with no champion and no history, as before anything was promoted."""
    client = contract.client_for(own)
    client.delete_registered_model_alias(own.model_name, own.champion_alias)
    client.delete_registered_model_tag(own.model_name, registry.HISTORY_TAG)
    return client


def champion_of(client, settings: Settings) -> str | None:
    version = contract.champion(client, settings)
    return version.version if version else None


def promote(client, settings: Settings, *versions: str) -> None:
    for version in versions:
        registry.promote(client, settings, version, by="test")


def test_rollback_moves_the_champion_back_to_the_previous_one(own: Settings, client) -> None:
    promote(client, own, "1", "2")

    result = run_cli(own, "model", "rollback")

    assert result.returncode == 0, result.stderr
    assert champion_of(client, own) == "1"
    assert "champion: v2 -> v1" in result.stderr


def test_rollback_without_a_previous_champion_says_so_and_changes_nothing(
    own: Settings, client
) -> None:
    promote(client, own, "1")
    history_before = registry.history(client, own)

    result = run_cli(own, "model", "rollback")

    assert result.returncode == 1
    assert "no previous champion" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert champion_of(client, own) == "1"
    assert registry.history(client, own) == history_before


def test_rollback_onto_the_candidate_of_a_rollout_ends_that_rollout(own: Settings, client) -> None:
    from pipelines import rollout
    from platform_core import rollout as state

    promote(client, own, "1", "2")
    rollout.start(client, own, "1", state.Plan(state.SHADOW), by="test")

    registry.rollback(client, own)

    assert champion_of(client, own) == "1"
    assert state.current(client, own) is None
    tags = client.get_model_version(own.model_name, "1").tags
    assert (tags[state.TAG_OUTCOME], tags[state.TAG_ENDED_BY]) == (state.PROMOTED, "model rollback")


def test_rollback_twice_walks_back_through_the_champions(own: Settings, client) -> None:
    promote(client, own, "1", "2", "3")

    first = registry.rollback(client, own)
    second = registry.rollback(client, own)

    assert (first.previous, first.current) == ("3", "2")
    assert (second.previous, second.current) == ("2", "1")


def test_rollback_after_a_hand_moved_alias_returns_to_the_champion_before_it(
    own: Settings, client
) -> None:
    promote(client, own, "1")
    client.set_registered_model_alias(own.model_name, own.champion_alias, "3")  # in the MLflow UI

    move = registry.rollback(client, own)

    assert (move.previous, move.current) == ("3", "1")


def test_rollback_without_any_champion_says_so(own: Settings, client) -> None:
    with pytest.raises(registry.NothingToRollBack, match="has no champion"):
        registry.rollback(client, own)


def test_promote_moves_the_champion_and_says_from_which_to_which(own: Settings, client) -> None:
    promote(client, own, "1")

    result = run_cli(own, "model", "promote", "2")

    assert result.returncode == 0, result.stderr
    assert champion_of(client, own) == "2"
    assert "champion: v1 -> v2" in result.stderr


def test_promote_removes_the_challenger_alias_from_the_winner(own: Settings, client) -> None:
    registry.mark_challenger(client, own, "3")

    registry.promote(client, own, "3", by="test")

    assert contract.version_by_alias(client, own, own.challenger_alias) is None


def test_promote_of_an_unknown_version_names_the_existing_ones(own: Settings, client) -> None:
    with pytest.raises(PlatformError, match=r"has no version '9' \(versions: 1, 2, 3\)"):
        registry.require_version(client, own, "9")


def test_model_list_json_shows_versions_aliases_and_metrics(own: Settings, client) -> None:
    promote(client, own, "2")

    result = run_cli(own, "model", "list", "--json")

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["version"] for row in rows] == ["3", "2", "1"]
    assert rows[1]["aliases"] == [own.champion_alias]
    assert set(rows[0]["metrics"]) == {"auc", "accuracy", "f1"}
    assert rows[0]["metrics"]["auc"] is not None
    assert rows[0]["created"]


def test_a_model_name_with_a_quote_is_listed_and_rolled_back(platform: Settings) -> None:
    """MLflow accepts "learner's model"; an unescaped filter made every search of it fail."""
    quoted = platform.model_copy(update={"model_name": f"learner's model {uuid.uuid4().hex[:6]}"})
    register_versions(quoted, 2)
    client = contract.client_for(quoted)
    promote(client, quoted, "1", "2")

    rows = registry.list_versions(client, quoted)
    move = registry.rollback(client, quoted)

    assert [row.version for row in rows] == ["2", "1"]
    assert (move.previous, move.current) == ("2", "1")


@pytest.mark.parametrize(
    ("value", "literal"), [("plain", "'plain'"), ("it's", '"it\'s"'), ('say "hi"', "'say \"hi\"'")]
)
def test_filter_values_are_quoted_with_the_quote_they_do_not_hold(value: str, literal: str):
    assert contract.filter_value(value) == literal


@pytest.mark.parametrize("name", ["", "a/b", "ns:model", 'it\'s "x"'])
def test_model_names_mlflow_cannot_register_or_search_are_refused(name: str) -> None:
    with pytest.raises(PlatformError, match="cannot be a model name"):
        contract.check_model_name(name)


@pytest.mark.parametrize("move", ["rollback", "promote"])
def test_a_pass_judged_against_a_champion_a_person_replaced_meanwhile_is_not_promoted(
    own: Settings, client, prefect_api: None, move: str
) -> None:
    """A retrain's gate compares with the champion of the moment it reads it; a person who
    rolls back (or promotes) while it scores has the last word, not that stale comparison."""
    from pipelines import gate, tasks

    promote(client, own, "1", "2")
    passed = gate.decide(0.8, own.gate_min_auc, 0.005, champion_version="2", champion_auc=0.7)
    if move == "rollback":
        registry.rollback(client, own)  # v2 was the broken one: v1 is back
    else:
        promote(client, own, "1")

    promotion = tasks.promote(own, "3", passed)

    assert not promotion.promoted
    assert champion_of(client, own) == "1"
    tags = client.get_model_version(own.model_name, "3").tags
    assert tags[registry.TAG_GATE_DECISION] == "passed, champion changed"
    reason = tags[registry.TAG_GATE_REASON]
    assert "the champion changed from v2 to v1 while the gate ran" in reason, reason
    assert "mlops-lab model promote 3" in reason, reason


def test_a_pass_judged_against_the_champion_still_in_place_is_promoted(
    own: Settings, client, prefect_api: None
) -> None:
    from pipelines import gate, tasks

    promote(client, own, "1", "2")
    passed = gate.decide(0.8, own.gate_min_auc, 0.005, champion_version="2", champion_auc=0.7)

    promotion = tasks.promote(own, "3", passed)

    assert promotion.promoted
    assert champion_of(client, own) == "3"
    tags = client.get_model_version(own.model_name, "3").tags
    assert tags[registry.TAG_GATE_DECISION] == "promoted"

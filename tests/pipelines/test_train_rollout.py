"""`mlops-lab train --rollout shadow|canary`: a version that passes the gate is tried beside the
champion instead of replacing it, and the gate's recorded decision says so."""

from __future__ import annotations

import pytest

from pipelines import registry
from platform_core import contract
from platform_core import rollout as state
from platform_core.settings import Settings
from tests.pipelines.conftest import Trained, cli_train, result_line, with_own_model
from tests.support import run_cli

ROWS = ("--rows", "600")


@pytest.fixture(scope="module")
def easy(platform: Settings) -> Settings:
    """A model of its own whose gate passes any comparable challenger (a margin of -1), so the
    same small fit passes every time."""
    return with_own_model(platform).model_copy(update={"gate_margin_auc": -1.0})


@pytest.fixture(scope="module")
def first(easy: Settings) -> Trained:
    return cli_train(easy, *ROWS, "--rollout", "shadow")


@pytest.fixture(scope="module")
def rolled(easy: Settings, first: Trained) -> Trained:
    return cli_train(easy, *ROWS, "--rollout", "canary", "--percent", "20")


@pytest.fixture(scope="module")
def while_rolling(easy: Settings, rolled: Trained) -> Trained:
    return cli_train(easy, *ROWS, "--rollout", "shadow")


def gate_tags(settings: Settings, version: str) -> tuple[str, str, str]:
    """The gate's decision on the version, on its run, and its reason."""
    client = contract.client_for(settings)
    tags = client.get_model_version(settings.model_name, version).tags
    run_id = client.get_model_version(settings.model_name, version).run_id
    assert run_id is not None
    run_tags = client.get_run(run_id).data.tags
    return (
        tags[registry.TAG_GATE_DECISION],
        run_tags["gate.decision"],
        tags[registry.TAG_GATE_REASON],
    )


def test_a_first_model_with_rollout_is_promoted_there_being_no_champion_to_try_it_beside(
    first: Trained,
) -> None:
    assert first.outcome["promoted"] is True
    assert first.outcome["rollout"] is None
    assert "promoted directly: there is no champion to try it beside" in first.outcome["reason"]


def test_a_version_passing_the_gate_becomes_the_candidate_and_not_the_champion(
    easy: Settings, rolled: Trained
) -> None:
    client = contract.client_for(easy)
    running = state.current(client, easy)

    assert rolled.outcome["promoted"] is False
    assert rolled.outcome["rollout"] == "canary 20%"
    assert running is not None and running.version == rolled.outcome["version"] == "2"
    assert running.plan == state.Plan.canary(20)
    assert running.started_by == "quality gate"
    assert contract.champion(client, easy).version == "1"  # pyright: ignore[reportOptionalMemberAccess]


def test_the_gate_decision_says_the_rollout_started_on_the_version_and_its_run(
    easy: Settings, rolled: Trained
) -> None:
    on_version, on_run, _ = gate_tags(easy, "2")

    assert on_version == on_run == "rollout started (canary 20%)"


def test_train_with_rollout_ends_with_a_line_saying_the_rollout_started(rolled: Trained) -> None:
    line = result_line(rolled.process.stderr)

    assert "rollout started (canary 20%) beside champion v1" in line
    assert "rollout status" in rolled.process.stderr


def test_while_a_rollout_is_in_progress_a_passing_version_is_registered_without_promotion(
    easy: Settings, while_rolling: Trained
) -> None:
    client = contract.client_for(easy)
    on_version, on_run, reason = gate_tags(easy, "3")

    assert while_rolling.outcome["promoted"] is False
    assert while_rolling.outcome["rollout"] is None
    assert on_version == on_run == "passed, not rolled out"
    assert "not rolled out: v2 is being rolled out (canary 20%)" in reason
    assert "`mlops-lab rollout start 3 --shadow`" in reason
    assert state.current(client, easy).version == "2"  # pyright: ignore[reportOptionalMemberAccess]
    assert contract.champion(client, easy).version == "1"  # pyright: ignore[reportOptionalMemberAccess]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--percent", "5"), "pass --rollout canary too"),
        (("--rollout", "shadow", "--percent", "5"), "a shadow candidate answers no request"),
        (("--rollout", "canary", "--percent", "150"), "at most 100 percent"),
        (("--rollout", "blue-green"), "Unknown rollout mode 'blue-green'"),
    ],
)
def test_rollout_options_that_do_not_fit_are_refused_before_anything_runs(
    platform: Settings, options: tuple[str, ...], message: str
) -> None:
    result = run_cli(platform, "train", *options)

    assert result.returncode == 1
    assert message in " ".join(result.stderr.split())

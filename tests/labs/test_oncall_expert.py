"""An expert on-call round: two unrelated incidents at once and a red herring alert. Paged twice,
nothing named; the round goes on while one incident is fixed and ends when both are (labs 21 and
05); giving up puts both back (labs 06 and 05). Every pair of EXPERT_PAIRS is one of these two."""

from __future__ import annotations

import json

from mlops_lab.interview.oncall import (
    DECOY_ALERT,
    DECOY_FILE,
    EXPERT_PAIRS,
    Oncall,
    symptom_bound_s,
)
from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.engine import Engine
from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED, ProgressStore
from monitoring import team_rules
from platform_core.settings import Settings
from tests.labs.test_lab_cycles import SOLVED_WITHIN_S, assert_golden
from tests.labs.test_oncall import assert_hidden, oncall, round_file
from tests.support import platform_environment, wait_for


def _start(platform: Settings, pair: tuple[str, str]):
    with platform_environment(platform):
        rounds = Oncall(platform)
        round_ = rounds.start_expert(among=[pair])
        return rounds.await_symptom(round_, symptom_bound_s(platform))


def _decoy(platform: Settings):
    return team_rules.directory(platform) / DECOY_FILE


def _put_back(platform: Settings, first, second) -> None:
    """Whatever a failure left: the round ended, both labs reset, the red herring gone."""
    with platform_environment(platform):
        if round_file(platform).exists():
            Oncall(platform).giveup()
        for lab in (second, first):
            Engine(platform, on_call=True).reset(lab)


def test_every_pair_is_two_local_incidents() -> None:
    assert set(EXPERT_PAIRS) == {("21", "05"), ("06", "05")}
    for first, second in EXPERT_PAIRS:
        assert first != second
        assert find(first).runs_on("local") and find(second).runs_on("local")


def test_an_expert_round_ends_only_when_both_incidents_are_fixed(
    platform: Settings, ctx: LabContext
) -> None:
    pair = ("21", "05")
    first, second = find(pair[0]), find(pair[1])
    store = ProgressStore(platform.learner_home)
    round_ = _start(platform, pair)
    try:
        assert round_.labs == (first, second)
        assert round_.symptom is not None and round_.symptom.visible, round_.symptom
        wait_for(lambda: ctx.firing(DECOY_ALERT), 60, what="the red herring firing")
        status = oncall(platform, "status")
        hint = oncall(platform, "hint")
        early = oncall(platform, "check", "--wait", "0", "--json")
        for lab in (first, second):
            assert_hidden(lab, status.stdout + status.stderr + hint.stdout + early.stdout)
        assert "paged 2 times" in status.stdout and "Page 2" in status.stdout, status.stdout
        assert first.page["alert"][:20] in " ".join(status.stdout.split())
        assert second.page["alert"][:20] in " ".join(status.stdout.split())
        assert hint.returncode == 0 and "Hint 1/" in hint.stdout, hint.stderr
        assert early.returncode == 1 and not json.loads(early.stdout)["passed"]
        raw = json.loads(round_file(platform).read_text())
        assert "lab" not in raw and "second" in raw

        # One incident fixed: it is solved, the round goes on.
        with platform_environment(platform):
            engine = Engine(platform, on_call=True)
            engine.solve(second)
            assert engine.check(second, wait_s=float(SOLVED_WITHIN_S)).passed
        half = oncall(platform, "check", "--wait", "0")
        assert half.returncode == 1, half.stderr
        assert_hidden(first, half.stdout + half.stderr)
        assert store.get(second.id).status == SOLVED
        assert store.get(first.id).status == IN_PROGRESS
        assert round_file(platform).exists()

        # Both: the round ends, both named, the red herring too, and it is gone.
        assert oncall(platform, "solve").returncode == 0
        done = oncall(platform, "check", "--wait", SOLVED_WITHIN_S)
        assert done.returncode == 0, done.stdout + done.stderr
        said = " ".join(done.stderr.split())
        for lab in (first, second):
            assert f"It was lab {lab.id}: {lab.title}" in said
        assert f"{DECOY_ALERT} was a red herring" in said
        assert not round_file(platform).exists() and not _decoy(platform).exists()
    finally:
        _put_back(platform, first, second)
    assert_golden(ctx)


def test_giving_up_an_expert_round_names_both_and_puts_both_back(
    platform: Settings, ctx: LabContext
) -> None:
    first, second = find("06"), find("05")
    _start(platform, ("06", "05"))
    try:
        gave_up = oncall(platform, "giveup")
        assert gave_up.returncode == 0, gave_up.stderr
        said = " ".join(gave_up.stderr.split())
        assert f"It was lab {first.id}" in said and f"It was lab {second.id}" in said
        assert not round_file(platform).exists() and not _decoy(platform).exists()
        store = ProgressStore(platform.learner_home)
        assert store.in_progress() == []
    finally:
        _put_back(platform, first, second)
    assert_golden(ctx)

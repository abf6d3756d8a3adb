"""The on-call round file (`<learner_home>/oncall.json`): written whole and private; a damaged
one is set aside, named without naming the round's lab, and written again from the progress."""

from __future__ import annotations

import json
import stat

import pytest

from mlops_lab.interview.oncall import ROUND_FILE, Oncall, Round
from mlops_lab.lab_engine.catalog import Lab, find
from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.state_damage import DAMAGE, set_aside, warnings

LAB = find("06")


def round_of_06(settings: Settings) -> Oncall:
    """An on-call round of lab 06 as `oncall start` leaves it in the progress."""
    progress = LabProgress(status=IN_PROGRESS, mode="oncall", started_at=1_790_000_000.0)
    ProgressStore(settings.learner_home).save(LAB.id, progress)
    return Oncall(settings)


def expert_round_of_06_and_05(settings: Settings) -> tuple[Oncall, Lab]:
    """An expert round, lab 06 then lab 05, as `oncall start --expert` leaves it."""
    oncall = round_of_06(settings)
    first = oncall.current()
    assert first is not None
    second = find("05")
    progress = LabProgress(status=IN_PROGRESS, mode="oncall", started_at=1_790_000_001.0)
    ProgressStore(settings.learner_home).save(second.id, progress)
    oncall._write(Round(first.lab, first.started_at, second=second))
    return oncall, second


@pytest.mark.parametrize(
    "damage",
    [DAMAGE["binary"], DAMAGE["null"], b'{"started_at": 1790000000.0}'],
    ids=["binary", "null", "no lab"],
)
def test_a_damaged_round_file_is_set_aside_and_written_again(
    unstarted_settings: Settings, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    oncall = round_of_06(unstarted_settings)
    path = unstarted_settings.learner_home / ROUND_FILE
    path.write_bytes(damage)

    round_ = oncall.current()

    assert round_ is not None and round_.lab.id == LAB.id
    [aside] = set_aside(path)
    assert aside.read_bytes() == damage
    said = warnings(caplog)
    assert str(path) in said and aside.name in said
    assert LAB.slug not in said and LAB.title not in said
    assert set(json.loads(path.read_text())) == {"round", "salt", "started_at"}


def test_the_round_file_is_written_private_and_whole(unstarted_settings: Settings) -> None:
    oncall = round_of_06(unstarted_settings)

    assert oncall.current() is not None

    path = unstarted_settings.learner_home / ROUND_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No temp file left: only the round, the progress and the lock the round's commands take.
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [".lock", ROUND_FILE, "progress.json"]


def test_an_expert_rounds_second_incident_is_kept_as_a_token_too(
    unstarted_settings: Settings,
) -> None:
    _, second = expert_round_of_06_and_05(unstarted_settings)

    raw = (unstarted_settings.learner_home / ROUND_FILE).read_text()
    assert '"05"' not in raw and '"06"' not in raw
    again = Oncall(unstarted_settings).current()
    assert again is not None and [lab.id for lab in again.labs] == [LAB.id, second.id]
    # The round lasts while either incident is open, and ends once both are solved.
    store = ProgressStore(unstarted_settings.learner_home)
    store.save(LAB.id, LabProgress(status="solved", started_at=1.0, solved_at=1_790_000_100.0))
    assert Oncall(unstarted_settings).current() is not None
    store.save(second.id, LabProgress(status="solved", started_at=1.0, solved_at=1_790_000_200.0))
    assert Oncall(unstarted_settings).current() is not None  # solved now: still to be told


def test_an_expert_round_keeps_every_cause_said_even_once_one_incident_is_solved(
    unstarted_settings: Settings,
) -> None:
    oncall, second = expert_round_of_06_and_05(unstarted_settings)
    store = ProgressStore(unstarted_settings.learner_home)

    for said in ("the scrape port", "the poll interval", "the scrape port"):
        oncall.answer({"cause": said})
    for lab in (LAB, second):
        assert store.get(lab.id).answers["cause"] == "the scrape port; the poll interval"

    # One incident solved: the cause said next is kept for the one still open.
    solved = store.get(LAB.id)
    solved.status = "solved"
    store.save(LAB.id, solved)
    oncall.answer({"cause": "serving's setting"})
    assert store.get(second.id).answers["cause"].endswith("; serving's setting")
    assert "serving's setting" not in store.get(LAB.id).answers["cause"]

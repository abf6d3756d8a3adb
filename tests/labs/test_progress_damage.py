"""A damaged progress file costs at most what is damaged: a file that cannot be read is set
aside, a lab entry that cannot be read is left out, and every `lab` command goes on, saying so."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.state_damage import DAMAGE, each_damage, set_aside, warnings
from tests.support import run_cli


def test_lab_list_goes_on_with_a_garbled_progress_file_and_names_it(
    unstarted_settings: Settings,
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(DAMAGE["binary"])

    result = run_cli(unstarted_settings, "lab", "list", "--json")

    assert result.returncode == 0, result.stderr
    [aside] = set_aside(store.path)
    assert f"{store.path} (lab progress) could not be read" in result.stderr
    assert aside.name in result.stderr
    assert {row["status"] for row in json.loads(result.stdout)} == {"not started"}


def test_a_bad_lab_entry_is_left_out_and_the_other_labs_kept(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    solved = asdict(LabProgress(status=SOLVED, started_at=1.0, solved_at=61.0, solves=1))
    original = json.dumps({"labs": {"02": solved, "05": None, "06": {"hints_used": "lots"}}})
    store.path.parent.mkdir(parents=True)
    store.path.write_text(original)

    result = run_cli(unstarted_settings, "lab", "list", "--json")

    assert result.returncode == 0, result.stderr
    status = {row["id"]: row["status"] for row in json.loads(result.stdout)}
    assert (status["02"], status["05"], status["06"]) == (SOLVED, "not started", "not started")
    assert "lab 05 (" in result.stderr and "lab 06 (hints_used:" in result.stderr
    assert set(json.loads(store.path.read_text())["labs"]) == {"02"}
    [aside] = set_aside(store.path)
    assert aside.read_text() == original and aside.name in result.stderr


@each_damage
def test_a_damaged_progress_file_is_set_aside_and_named(
    unstarted_settings: Settings, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(damage)

    assert store.load() == {}

    [aside] = set_aside(store.path)
    assert aside.read_bytes() == damage
    assert str(store.path) in warnings(caplog) and aside.name in warnings(caplog)


def test_an_unreadable_on_call_entry_is_left_out_without_naming_a_lab(
    unstarted_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save("03", LabProgress(status=SOLVED, started_at=1.0, solved_at=2.0))
    store.save("06", LabProgress(status=IN_PROGRESS, mode="oncall", started_at=3.0))
    document = json.loads(store.path.read_text())
    document["sealed"].append("not base64 at all")
    store.path.write_text(json.dumps(document))

    assert set(store.load()) == {"03", "06"}
    assert "an on-call round's lab" in warnings(caplog) and len(set_aside(store.path)) == 1
    # Left out once and for all: the next read has nothing to say.
    caplog.clear()
    assert set(store.load()) == {"03", "06"} and warnings(caplog) == ""

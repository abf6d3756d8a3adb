"""`mlops-lab interview` as a learner runs it: a real process, stdin scripted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lab.interview.bank import load_bank, select
from mlops_lab.interview.schedule import DAY_S
from mlops_lab.interview.store import DrillStore
from mlops_lab.lab_engine.progress import SOLVED, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.support import make_settings, remove_platform_files, run_cli

LAB_02 = select(load_bank(), "lab-02")


@pytest.fixture
def learner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Path]]:
    """Settings whose learner folder is a temp dir (through the setting once it exists, and
    through its environment variable, which run_cli passes on, until then)."""
    home = tmp_path / "learner"
    monkeypatch.setenv("MLOPS_LAB_LEARNER_HOME", str(home))
    overrides = {"learner_home": home} if "learner_home" in Settings.model_fields else {}
    settings = make_settings(**overrides)
    # Lab 02 solved: its debrief's questions are open (an unsolved lab's wait for its solve).
    ProgressStore(home).save("02", LabProgress(status=SOLVED, solves=1))
    yield settings, home
    remove_platform_files(settings)


def _output(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def test_drill_persists_each_answer_and_prints_what_is_due_next(learner):
    settings, home = learner
    started = time.time()
    result = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", "--limit", "2", stdin="\ng\n\na\n"
    )
    output = _output(result)
    assert result.returncode == 0, output
    assert LAB_02[0].question in output and LAB_02[1].question in output
    assert LAB_02[2].question not in output  # --limit 2
    cards = DrillStore(home).load()
    got_it, again = cards[LAB_02[0].id], cards[LAB_02[1].id]
    assert got_it.box == 2 and got_it.due >= started + DAY_S
    assert again.box == 1 and again.due <= time.time()
    assert "Due next" in output and "today: 2" in output  # lab-02's third question and "again"
    assert "2 reviewed (1 got it, 1 again)" in output


def test_a_question_answered_got_it_is_not_asked_again_the_same_day(learner):
    settings, _ = learner
    run_cli(settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\ng\n")
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin="\na\n\na\n")
    output = _output(result)
    assert LAB_02[0].question not in output
    assert "Drill done: 2 reviewed" in output


def test_drill_without_input_stops_cleanly_with_a_one_line_result(learner):
    settings, home = learner
    result = run_cli(settings, "interview", "drill", stdin="", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert "Stopped at question 1 of" in output and "(no more input)" in output
    assert not (home / "drill.json").exists()


def test_an_unsolved_labs_questions_wait_for_its_solve(learner):
    """A debrief's model answers name the incident's cause: drilling them before the lab would
    give it away."""
    settings, _ = learner
    lab_05 = select(load_bank(), "lab-05")

    asked = run_cli(settings, "interview", "drill", "--topic", "lab", stdin="", timeout=60)
    refused = run_cli(settings, "interview", "drill", "--topic", "lab-05", timeout=60)
    listed = run_cli(settings, "interview", "list", "--json", timeout=60)

    output = _output(asked)
    assert f"{len(LAB_02)} question(s) due in topic 'lab'" in output
    assert "questions of labs you have not solved wait until you solve them" in output
    assert refused.returncode == 1
    assert "open once you solve lab 05" in refused.stderr
    assert lab_05[0].answer.split()[0] not in refused.stdout + refused.stderr
    rows = {row["topic"]: row for row in json.loads(listed.stdout)}
    assert rows["lab-05-serving-down"]["locked"] and rows["lab-05-serving-down"]["due"] == 0
    assert not rows["lab-02-data-drift"]["locked"]


def test_input_ending_before_the_verdict_saves_nothing_for_that_question(learner):
    settings, home = learner
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin="\n", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert LAB_02[0].answer.split()[0] in output  # the answer was shown
    assert "Stopped at question 1 of" in output and "(no more input)" in output
    assert DrillStore(home).load() == {}


def test_an_unclear_reply_is_asked_again_and_q_stops(learner):
    settings, home = learner
    result = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", stdin="\nmaybe\ng\nq\n", timeout=60
    )
    output = _output(result)
    assert "Type g, a or q." in output
    assert "[g]ot it / [a]gain / [q]uit" in output  # the prompt is not eaten as Rich markup
    assert "Stopped at question 2 of 3 (q): 1 reviewed" in output
    assert list(DrillStore(home).load()) == [LAB_02[0].id]


def test_an_unknown_topic_fails_and_lists_the_known_topics(learner):
    settings, _ = learner
    result = run_cli(settings, "interview", "drill", "--topic", "astrology", timeout=60)
    assert result.returncode == 1
    assert "no interview topic 'astrology'" in result.stderr
    assert "lab-02-data-drift" in result.stderr and "monitoring" in result.stderr


def test_nothing_due_says_so_and_when_to_come_back(learner):
    settings, _ = learner
    stdin = "\ng\n" * len(LAB_02)
    run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin=stdin, timeout=60)
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert "Nothing is due in topic 'lab-02'" in output
    assert f": {len(LAB_02)}" in output  # all due again on one day


def test_list_json_counts_questions_and_due_ones_per_topic(learner):
    settings, _ = learner
    run_cli(settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\ng\n")
    result = run_cli(settings, "interview", "list", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {row["topic"]: row for row in json.loads(result.stdout)}
    assert rows["lab-02-data-drift"]["questions"] == len(LAB_02)
    assert rows["lab-02-data-drift"]["due"] == len(LAB_02) - 1
    assert rows["monitoring"]["due"] == rows["monitoring"]["questions"] >= 3
    assert rows["lab-02-data-drift"]["source"] == "labs/02-data-drift/debrief.md"


def test_list_survives_a_corrupt_drill_file_and_keeps_it_aside(learner):
    settings, home = learner
    home.mkdir(parents=True, exist_ok=True)
    (home / "drill.json").write_text("{not json")
    result = run_cli(settings, "interview", "list", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert "could not be read" in output
    drills = [p.name for p in home.iterdir() if p.name.startswith("drill.json")]
    assert [name.startswith("drill.json.corrupt-") for name in drills] == [True]

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
        settings, "interview", "drill", "--topic", "lab-02", "--limit", "2", stdin="\nall\n\n1 2\n"
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


def test_the_key_points_are_listed_numbered_after_the_model_answer(learner):
    settings, _ = learner
    result = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\n1\n"
    )
    output = _output(result)
    question = LAB_02[0]
    answer_at = output.index(question.answer.split()[0])
    listed_at = output.index("Key points")
    assert answer_at < listed_at
    for number, point in enumerate(question.key_points, 1):
        # The start of each point, after its number (a long one wraps at the terminal's width).
        assert f"{number}. {' '.join(point.split()[:3])}" in output[listed_at:]
    assert f"Which did you cover? Their numbers (1 to {len(question.key_points)})" in output


def test_coverage_decides_the_verdict_and_is_stored_per_card(learner):
    settings, home = learner
    first, second, third = (len(q.key_points) for q in LAB_02)
    result = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", stdin="\n1 3\n\nall\n\n\n"
    )
    output = _output(result)
    assert result.returncode == 0, output
    missed = ", ".join(str(n) for n in range(1, first + 1) if n not in (1, 3))
    assert f"Covered 2 of {first} (missed {missed}): again." in output
    assert f"Covered all {second}: got it." in output
    assert f"Covered 0 of {third}" in output  # Enter: none
    cards = DrillStore(home).load()
    assert [(cards[q.id].covered, cards[q.id].points) for q in LAB_02] == [
        (2, first),
        (second, second),
        (0, third),
    ]
    assert [cards[q.id].box for q in LAB_02] == [1, 2, 1]
    covered = 2 + second
    assert (
        f"3 reviewed (1 got it, 2 again), {covered} of {first + second + third} key points"
        in output
    )
    document = json.loads((home / "drill.json").read_text())
    assert document["format"] == 1
    assert document["cards"][LAB_02[1].id]["covered"] == second


def test_a_question_answered_got_it_is_not_asked_again_the_same_day(learner):
    settings, _ = learner
    run_cli(settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\nall\n")
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin="\n\n\n\n")
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


@pytest.mark.parametrize(
    ("reply", "re_prompt"),
    [
        ("maybe", "Type the numbers of the points you covered (from 1 to {n}, like 1 3), 'all'"),
        ("g", "Type the numbers of the points you covered (from 1 to {n}, like 1 3), 'all'"),
        ("9", "There is no point 9: they are numbered 1 to {n}"),
    ],
    ids=["words", "old-verdict", "out-of-range"],
)
def test_a_malformed_coverage_reply_is_asked_again_and_q_stops(learner, reply, re_prompt):
    settings, home = learner
    stdin = f"\n{reply}\nall\nq\n"
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin=stdin, timeout=60)
    output = _output(result)
    points = len(LAB_02[0].key_points)
    assert re_prompt.format(n=points) in output
    assert output.count("Which did you cover?") == 2  # asked again, then answered
    assert "'all', or Enter for none; q stops" in output  # the prompt is not eaten as Rich markup
    assert "Stopped at question 2 of 3 (q): 1 reviewed" in output
    assert list(DrillStore(home).load()) == [LAB_02[0].id]


def test_q_at_the_coverage_question_stops_and_saves_nothing_for_that_question(learner):
    settings, home = learner
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin="\nq\n", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert "Stopped at question 1 of 3 (q): 0 reviewed" in output
    assert DrillStore(home).load() == {}


def test_a_drill_file_from_before_coverage_is_drilled_and_gains_it(learner):
    """drill.json as the drill wrote it before key points (format 1, no coverage fields)."""
    settings, home = learner
    home.mkdir(parents=True, exist_ok=True)
    old_card = {"box": 3, "due": 0.0, "reviewed_at": 1.0, "reviews": 2, "lapses": 0}
    old_cards = {q.id: old_card for q in LAB_02}  # all in box 3, so the first is asked first
    (home / "drill.json").write_text(json.dumps({"format": 1, "cards": old_cards}))
    result = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\nall\n"
    )
    output = _output(result)
    assert result.returncode == 0, output
    assert "box 3" in output and "could not be read" not in output
    card = DrillStore(home).load()[LAB_02[0].id]
    assert (card.box, card.reviews, card.covered) == (4, 3, len(LAB_02[0].key_points))


@pytest.mark.parametrize("topic", ["slo-alerting", "cost", "feature-stores"])
def test_a_new_topic_is_drilled_with_topic(learner, topic):
    settings, home = learner
    chosen = select(load_bank(), topic)
    result = run_cli(
        settings, "interview", "drill", "--topic", topic, "--limit", "1", stdin="\nall\n"
    )
    output = _output(result)
    assert result.returncode == 0, output
    assert chosen[0].question.split()[0] in output
    assert f"1 question(s) due in topic {topic!r}" in output
    assert list(DrillStore(home).load()) == [chosen[0].id]


def test_an_unknown_topic_fails_and_lists_the_known_topics(learner):
    settings, _ = learner
    result = run_cli(settings, "interview", "drill", "--topic", "astrology", timeout=60)
    assert result.returncode == 1
    assert "no interview topic 'astrology'" in result.stderr
    assert "lab-02-data-drift" in result.stderr and "monitoring" in result.stderr


def test_nothing_due_says_so_and_when_to_come_back(learner):
    settings, _ = learner
    stdin = "\nall\n" * len(LAB_02)
    run_cli(settings, "interview", "drill", "--topic", "lab-02", stdin=stdin, timeout=60)
    result = run_cli(settings, "interview", "drill", "--topic", "lab-02", timeout=60)
    output = _output(result)
    assert result.returncode == 0, output
    assert "Nothing is due in topic 'lab-02'" in output
    assert f": {len(LAB_02)}" in output  # all due again on one day


def test_list_json_counts_questions_and_due_ones_per_topic(learner):
    settings, _ = learner
    run_cli(settings, "interview", "drill", "--topic", "lab-02", "--limit", "1", stdin="\nall\n")
    result = run_cli(settings, "interview", "list", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {row["topic"]: row for row in json.loads(result.stdout)}
    assert rows["lab-02-data-drift"]["questions"] == len(LAB_02)
    assert rows["lab-02-data-drift"]["due"] == len(LAB_02) - 1
    assert rows["monitoring"]["due"] == rows["monitoring"]["questions"] >= 3
    assert rows["lab-02-data-drift"]["source"] == "labs/02-data-drift/debrief.md"


def test_list_shows_the_key_points_covered_per_topic(learner):
    settings, _ = learner
    first, second = (len(q.key_points) for q in LAB_02[:2])
    drilled = run_cli(
        settings, "interview", "drill", "--topic", "lab-02", "--limit", "2", stdin="\nall\n\n2\n"
    )
    assert drilled.returncode == 0, _output(drilled)
    listed = run_cli(settings, "interview", "list", "--json", timeout=60)
    table = run_cli(settings, "interview", "list", timeout=60)
    rows = {row["topic"]: row for row in json.loads(listed.stdout)}
    coverage = {"graded": 2, "covered": first + 1, "points": first + second}
    assert rows["lab-02-data-drift"]["coverage"] == coverage
    assert rows["monitoring"]["coverage"] is None
    assert "Covered" in table.stdout and f"{first + 1} of {first + second}" in table.stdout


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

"""Persistence of the boxes: across processes, atomically, surviving a corrupt file, and
reading files written before cards kept their key-point coverage."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lab.interview.bank import file_questions
from mlops_lab.interview.schedule import Card, review
from mlops_lab.interview.store import DrillStore, learner_home
from tests.state_damage import set_aside, warnings

NOW = 1_790_000_000.0


def test_boxes_written_by_one_process_are_read_by_another(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from mlops_lab.interview.schedule import Card
        from mlops_lab.interview.store import DrillStore
        DrillStore(Path({str(tmp_path)!r})).save({{"monitoring:abc": Card(box=3, due=12.5)}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    cards = DrillStore(tmp_path).load()
    assert cards == {"monitoring:abc": Card(box=3, due=12.5)}


def test_save_replaces_the_file_whole_and_leaves_no_temp_files(tmp_path: Path):
    store = DrillStore(tmp_path / "learner")
    store.save({"a:1": Card()})
    store.save({"a:1": review(Card(), got_it=True, now=NOW), "b:2": Card()})
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["drill.json"]
    document = json.loads(store.path.read_text())
    assert document["cards"]["a:1"]["box"] == 2
    assert set(document["cards"]) == {"a:1", "b:2"}


def test_a_corrupt_file_is_kept_aside_and_the_drill_starts_afresh(tmp_path: Path):
    store = DrillStore(tmp_path)
    store.path.write_text('{"cards": {"a:1": {"box": 2, "du')
    assert store.load() == {}
    [aside] = set_aside(store.path)
    assert aside.read_text().startswith('{"cards"')
    assert not store.path.exists()
    store.save({"a:1": Card()})
    assert DrillStore(tmp_path).load() == {"a:1": Card()}


def test_a_card_with_an_impossible_box_is_left_out_and_the_others_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    store = DrillStore(tmp_path)
    original = json.dumps({"cards": {"a:1": {"box": 9, "due": 0}, "b:2": {"box": 2, "due": 5}}})
    store.path.write_text(original)
    assert store.load() == {"b:2": Card(box=2, due=5)}
    assert "card a:1 (no box 9)" in warnings(caplog)
    [aside] = set_aside(store.path)
    assert aside.read_text() == original
    assert DrillStore(tmp_path).load() == {"b:2": Card(box=2, due=5)}


def test_a_reworded_question_becomes_a_new_card_and_removed_ones_are_ignored(tmp_path: Path):
    questions = tmp_path / "questions"
    questions.mkdir()
    answer = "An answer. " * 20 + "\n\n   Key points:\n   - a point"
    path = questions / "serving.md"
    path.write_text(f'1. **"Old wording?"**\n   {answer}\n2. **"Kept?"**\n   {answer}\n')
    old, kept = file_questions(tmp_path)
    store = DrillStore(tmp_path / "learner")
    store.save({q.id: review(Card(), got_it=True, now=NOW) for q in (old, kept)})

    path.write_text(f'1. **"New wording?"**\n   {answer}\n2. **"Kept?"**\n   {answer}\n')
    new, kept_again = file_questions(tmp_path)
    cards = store.load()
    assert kept_again.id == kept.id and cards[kept.id].box == 2
    assert new.id not in cards  # a new card: box 1, due now
    assert old.id in cards  # unused, harmless


def test_coverage_is_saved_and_read_back(tmp_path: Path):
    graded = review(Card(), got_it=False, now=NOW, coverage=(3, 5))
    DrillStore(tmp_path).save({"cost:1": graded})
    document = json.loads((tmp_path / "drill.json").read_text())
    assert document["format"] == 1
    assert (document["cards"]["cost:1"]["covered"], document["cards"]["cost:1"]["points"]) == (3, 5)
    assert DrillStore(tmp_path).load() == {"cost:1": graded}


def test_a_file_written_before_coverage_loads_its_cards_as_never_graded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """drill.json as the drill wrote it before key points: format 1, cards without coverage."""
    old_card = {"box": 3, "due": NOW, "reviewed_at": NOW - 60, "reviews": 2, "lapses": 0}
    original = json.dumps({"format": 1, "cards": {"monitoring:abc": old_card}}, indent=1)
    store = DrillStore(tmp_path)
    store.path.write_text(original)
    assert store.load() == {"monitoring:abc": Card(**old_card)}
    assert Card(**old_card).covered is None and Card(**old_card).points is None
    assert not set_aside(store.path) and not warnings(caplog)
    assert store.path.read_text() == original  # loading never rewrites a good file


@pytest.mark.parametrize(
    "coverage",
    [{"covered": 4, "points": 3}, {"covered": -1, "points": 3}, {"covered": 2}, {"points": 0}],
    ids=["more-than-all", "negative", "no-points", "zero-points"],
)
def test_a_card_with_impossible_coverage_is_left_out_and_the_others_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, coverage: dict
):
    store = DrillStore(tmp_path)
    bad = {"box": 2, "due": 5, **coverage}
    store.path.write_text(json.dumps({"cards": {"a:1": bad, "b:2": {"box": 2, "due": 5}}}))
    assert store.load() == {"b:2": Card(box=2, due=5)}
    assert "card a:1 (covered" in warnings(caplog)
    assert len(set_aside(store.path)) == 1


def test_learner_home_comes_from_the_setting_then_the_environment(tmp_path: Path, monkeypatch):
    class WithSetting:
        learner_home = tmp_path / "from-setting"

    monkeypatch.setenv("MLOPS_LAB_LEARNER_HOME", str(tmp_path / "from-env"))
    assert learner_home(WithSetting()) == tmp_path / "from-setting"
    assert learner_home(object()) == tmp_path / "from-env"


def test_a_renamed_labs_questions_keep_their_boxes():
    """Lab folders renamed (03-bad-release-rollback became 03-outcomes-disagree): a learner's
    boxes under the questions' former ids move to their ids now, once."""
    from mlops_lab.interview.bank import carry_over, lab_questions

    renamed = [q for q in lab_questions() if q.former_ids]
    assert renamed, "no lab has a former name: nothing to carry over"
    question = renamed[0]
    box_two = review(Card(), got_it=True, now=NOW)
    cards = {question.former_ids[0]: box_two}
    assert carry_over(cards, renamed) == 1
    assert cards == {question.id: box_two}
    assert carry_over(cards, renamed) == 0

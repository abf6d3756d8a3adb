"""The question bank: every lab debrief and every file under docs/interview parses, and each
question has a real answer and the key points it is graded against."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_lab.interview.bank import (
    INTERVIEW_DIR,
    file_questions,
    lab_questions,
    load_bank,
    parse_items,
    question_id,
    select,
)
from mlops_lab.lab_engine.catalog import all_labs
from platform_core.errors import PlatformError

MIN_ANSWER_WORDS = 40
MAX_POINT_CHARS = 120
# The topics added with graded drills (issue 25): each a file under docs/interview/questions.
NEW_TOPICS = (
    "batch-and-online-inference",
    "registry-disaster-recovery",
    "slo-alerting",
    "governance-and-lineage",
    "llm-and-gpu-serving",
    "feature-stores",
    "cost",
)


def test_every_lab_debrief_gives_at_least_three_questions_with_answers():
    bank = lab_questions()
    for lab in all_labs():
        questions = [q for q in bank if q.topic == f"lab-{lab.name}"]
        assert len(questions) >= 3, f"{lab.debrief} has {len(questions)} interview questions"


@pytest.mark.parametrize("question", load_bank(), ids=lambda q: q.id)
def test_every_answer_in_the_bank_has_at_least_40_words(question):
    words = len(question.answer.split())
    assert words >= MIN_ANSWER_WORDS, (
        f"{question.source}: {question.question!r} has a {words}-word answer"
    )


@pytest.mark.parametrize("question", load_bank(), ids=lambda q: q.id)
def test_every_question_has_3_to_6_key_points_each_a_short_line(question):
    where = f"{question.source}: {question.question!r}"
    assert 3 <= len(question.key_points) <= 6, f"{where} has {len(question.key_points)} key points"
    for point in question.key_points:
        assert point.strip(), f"{where} has an empty key point"
        assert len(point) < MAX_POINT_CHARS, f"{where}: a key point of {len(point)} characters"
        assert "\n" not in point


def test_every_interview_doc_contributes_questions():
    sources = {q.source for q in file_questions()}
    expected = set((INTERVIEW_DIR / "questions").glob("*.md"))
    expected |= set(INTERVIEW_DIR.glob("design-*.md"))
    assert sources == expected
    assert len(set(INTERVIEW_DIR.glob("design-*.md"))) >= 4


def test_the_concept_bank_has_at_least_15_questions():
    concept = [q for q in file_questions() if q.source.parent.name == "questions"]
    assert len(concept) >= 15


def test_question_ids_are_unique_and_stable():
    bank = load_bank()
    assert len({q.id for q in bank}) == len(bank)
    assert [q.id for q in load_bank()] == [q.id for q in bank]


def test_a_reworded_question_gets_a_new_id_but_whitespace_and_case_do_not():
    same = question_id("monitoring", "How do you  monitor\nyour monitoring?")
    assert same == question_id("monitoring", "how do you monitor your monitoring?")
    assert same != question_id("monitoring", "How do you watch your monitoring?")
    assert same != question_id("serving", "How do you monitor your monitoring?")


def test_parse_keeps_multi_paragraph_answers_and_stops_at_the_next_heading():
    text = """1. **"First?"**
   Line one of the answer.

   ```bash
   # a comment inside an indented code block, not a heading
   kubectl get pods
   ```

   Key points:
   - kubectl
2. **"Second?"**
   Its answer.

   Key points:
   - its point

## Another section
Not part of any answer.
"""
    items = parse_items(text)
    assert [item.question for item in items] == ["First?", "Second?"]
    assert "# a comment inside" in items[0].answer
    assert items[0].answer.startswith("Line one")
    assert items[1].answer == "Its answer."
    assert items[1].key_points == ("its point",)


def test_key_points_are_parsed_in_order_and_left_out_of_the_answer():
    text = """1. **"Why alert on burn rate?"**
   Because a fixed threshold is too high or too low.

   Key points:
   - Error budget: 0.1 % of requests over 30 days
   - Burn rate = error ratio / budget ratio
   - 14.4x over 1h with a 5m short window
"""
    [item] = parse_items(text)
    assert item.answer == "Because a fixed threshold is too high or too low."
    assert item.key_points == (
        "Error budget: 0.1 % of requests over 30 days",
        "Burn rate = error ratio / budget ratio",
        "14.4x over 1h with a 5m short window",
    )


def test_no_question_in_the_bank_shows_its_key_points_as_answer():
    for question in load_bank():
        assert "Key points:" not in question.answer, question.source
        assert not any(f"- {point}" in question.answer for point in question.key_points)


def _one_file(tmp_path: Path, item: str) -> Path:
    (tmp_path / "questions").mkdir()
    path = tmp_path / "questions" / "drafts.md"
    path.write_text(f'1. **"A question?"**\n   {"An answer. " * 20}\n{item}')
    return path


def test_a_question_without_key_points_is_an_error_naming_its_file_and_question(tmp_path: Path):
    _one_file(tmp_path, "")
    with pytest.raises(PlatformError, match=r"drafts\.md: 'A question\?' has no key points"):
        file_questions(tmp_path)


def test_a_line_after_the_key_points_that_is_not_a_point_is_an_error(tmp_path: Path):
    _one_file(tmp_path, "\n   Key points:\n   - one\n   More answer after the points.\n")
    with pytest.raises(PlatformError, match=r"only `- point` lines may follow") as raised:
        file_questions(tmp_path)
    assert "More answer after" in raised.value.message
    assert raised.value.hint is not None and "Key points:" in raised.value.hint


def test_a_file_without_questions_is_an_error_naming_the_file(tmp_path: Path):
    (tmp_path / "questions").mkdir()
    (tmp_path / "questions" / "empty.md").write_text("# Nothing here\n")
    with pytest.raises(PlatformError, match=r"empty\.md has no interview questions"):
        file_questions(tmp_path)


def test_topics_select_by_prefix_and_by_lab_slug():
    bank = load_bank()
    lab_02 = select(bank, "lab-02")
    assert lab_02 and {q.topic for q in lab_02} == {"lab-02-data-drift"}
    assert select(bank, "data-drift") == lab_02
    assert {q.topic for q in select(bank, "lab")} == {f"lab-{lab.name}" for lab in all_labs()}
    assert len({q.topic for q in select(bank, "design")}) >= 4
    assert select(bank, None) == bank


def test_an_unknown_topic_lists_the_known_ones():
    with pytest.raises(PlatformError) as raised:
        select(load_bank(), "astrology")
    assert "astrology" in raised.value.message
    assert raised.value.hint is not None
    assert "lab-02-data-drift" in raised.value.hint
    assert "monitoring" in raised.value.hint


def test_a_topic_prefix_does_not_match_lab_slugs():
    assert {q.topic for q in select(load_bank(), "serving")} == {"serving"}


@pytest.mark.parametrize("topic", NEW_TOPICS)
def test_each_new_topic_is_a_file_of_at_least_3_questions_selectable_by_name(topic):
    chosen = select(load_bank(), topic)
    assert {q.topic for q in chosen} == {topic}
    assert {q.source for q in chosen} == {INTERVIEW_DIR / "questions" / f"{topic}.md"}
    assert len(chosen) >= 3

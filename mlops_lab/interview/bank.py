"""The question bank: numbered Markdown items, gathered from the labs and docs/interview.

Every source uses one format, the one lab debriefs already use::

    1. **"The question?"**
       The model answer: one or more paragraphs, lists or code, indented under the item.

       Key points:
       - one line per point a strong answer must cover (3 to 6 of them)
       - indented like the answer and last in the item; the drill grades against them

The key points are not part of the answer the drill shows: it lists them, numbered, after it,
and asks which the learner covered. An item without them is an error naming its file.

Topics: a lab's questions get ``lab-NN-slug`` (so ``--topic lab-02`` and ``--topic lab`` select
them, and so does the exact slug), a file under ``docs/interview/questions/`` its stem, a
walkthrough (``docs/interview/design-*.md``) its stem, from its "Follow-up questions" section.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

from mlops_lab.lab_engine.catalog import LABS_DIR, all_labs
from platform_core.errors import PlatformError
from platform_core.settings import REPO_ROOT

INTERVIEW_DIR = REPO_ROOT / "docs" / "interview"
QUESTIONS_DIR = INTERVIEW_DIR / "questions"
LAB_SECTION = "Interview questions"
WALKTHROUGH_SECTION = "Follow-up questions"

_ITEM = re.compile(r"^\d+\.\s+\*\*(?P<question>.+?)\*\*\s*$")
_KEY_POINTS = re.compile(r"^Key points:\s*$")
_POINT = re.compile(r"^-\s+(?P<point>\S.*?)\s*$")
_HEADING = re.compile(r"^#{1,6}\s")
_QUOTES = "\"'“”‘’"


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    question: str
    answer: str
    source: Path
    # Other names the topic answers to exactly (a lab's id and bare slug).
    aliases: tuple[str, ...] = ()
    # The ids this question had under a lab's former folder names: a learner's boxes move over.
    former_ids: tuple[str, ...] = ()
    # The lab whose debrief asks it: its model answer gives that incident away before a solve.
    lab: str | None = None
    # What a strong answer must cover, one line each: the drill grades against them.
    key_points: tuple[str, ...] = ()

    def locked(self, solved: set[str]) -> bool:
        """Whether it waits for its lab to be solved."""
        return self.lab is not None and self.lab not in solved

    def matches(self, wanted: str) -> bool:
        # Prefixes only of the topic itself: `--topic serving` must not also pull in lab 05
        # (slug serving-down), while `--topic lab` takes every lab.
        return self.topic.startswith(wanted) or wanted in self.aliases


def question_id(topic: str, question: str) -> str:
    """Stable across runs and edits elsewhere in the file; a reworded question is a new card."""
    normalized = " ".join(question.lower().split())
    digest = hashlib.sha256(f"{topic}\n{normalized}".encode()).hexdigest()[:12]
    return f"{topic}:{digest}"


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section (up to the next heading of level 2 or higher)."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if re.fullmatch(rf"##\s+{re.escape(title)}\s*", line.strip()):
            body = []
            for following in lines[start + 1 :]:
                if re.match(r"^#{1,2}\s", following):
                    break
                body.append(following)
            return "\n".join(body)
    return ""


@dataclass(frozen=True)
class Item:
    question: str
    answer: str
    key_points: tuple[str, ...]


def parse_items(text: str) -> list[Item]:
    """One item per numbered bold question: the answer is everything indented under it, up to
    its ``Key points:`` list. Raises ValueError naming the question when that list is missing or
    malformed."""
    items: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match:
            items.append((match["question"].strip().strip(_QUOTES).strip(), []))
        elif _HEADING.match(line):
            # A heading ends the list: later sections are not part of the last answer.
            if items:
                break
        elif items:
            items[-1][1].append(line)
    return [_item(question, textwrap.dedent("\n".join(body))) for question, body in items]


def _item(question: str, body: str) -> Item:
    lines = body.splitlines()
    start = next((i for i, line in enumerate(lines) if _KEY_POINTS.match(line)), None)
    if start is None:
        raise ValueError(f"{question!r} has no key points")
    points = []
    for line in lines[start + 1 :]:
        point = _POINT.match(line)
        if point:
            points.append(point["point"])
        elif line.strip():
            raise ValueError(
                f"{question!r}: after `Key points:` only `- point` lines may follow (one line "
                f"each, last in the item), not {line.strip()!r:.60}"
            )
    if not points:
        raise ValueError(f"{question!r}: `Key points:` is followed by no `- point` line")
    return Item(question, "\n".join(lines[:start]).strip(), tuple(points))


def _questions(path: Path, text: str, topic: str, aliases: tuple[str, ...] = ()) -> list[Question]:
    try:
        parsed = parse_items(text)
    except ValueError as error:
        raise PlatformError(
            f"{path}: {error}.",
            hint="Key points are a `Key points:` line, then one `- point` line each, indented "
            "like the answer and last in the item (docs/interview/README.md shows one).",
        ) from None
    if not parsed:
        raise PlatformError(
            f"{path} has no interview questions.",
            hint='Each is a numbered item `1. **"Question?"**` with the answer indented under it.',
        )
    return [
        Question(
            question_id(topic, item.question),
            topic,
            item.question,
            item.answer,
            path,
            aliases,
            key_points=item.key_points,
        )
        for item in parsed
    ]


def lab_questions(labs_dir: Path = LABS_DIR) -> list[Question]:
    bank = []
    for lab in all_labs(labs_dir):
        text = section(lab.debrief_text(), LAB_SECTION)
        questions = _questions(lab.debrief, text, f"lab-{lab.name}", (f"lab-{lab.id}", lab.slug))
        bank += [
            replace(
                q,
                former_ids=tuple(question_id(f"lab-{n}", q.question) for n in lab.former_names),
                lab=lab.id,
            )
            for q in questions
        ]
    return bank


def file_questions(interview_dir: Path = INTERVIEW_DIR) -> list[Question]:
    bank = []
    for path in sorted((interview_dir / "questions").glob("*.md")):
        bank += _questions(path, path.read_text(), path.stem)
    for path in sorted(interview_dir.glob("design-*.md")):
        bank += _questions(path, section(path.read_text(), WALKTHROUGH_SECTION), path.stem)
    return bank


def load_bank(labs_dir: Path = LABS_DIR, interview_dir: Path = INTERVIEW_DIR) -> list[Question]:
    """Every question, labs first (in lab order), then the concept files, then the walkthroughs."""
    return lab_questions(labs_dir) + file_questions(interview_dir)


def carry_over(cards: dict, bank: list[Question]) -> int:
    """Move a learner's boxes from a question's former ids (a lab renamed since) to its id now.
    Changes ``cards`` in place; returns how many moved."""
    moved = 0
    for question in bank:
        for old in question.former_ids:
            if old in cards and question.id not in cards:
                cards[question.id] = cards.pop(old)
                moved += 1
    return moved


def topics(bank: list[Question]) -> list[str]:
    return list(dict.fromkeys(question.topic for question in bank))


def select(bank: list[Question], topic: str | None) -> list[Question]:
    """Questions of a topic or a topic prefix; an unknown one is an error listing the known."""
    if not topic:
        return bank
    chosen = [question for question in bank if question.matches(topic)]
    if not chosen:
        raise PlatformError(
            f"There is no interview topic {topic!r}.",
            hint=f"Topics (a prefix works too): {', '.join(topics(bank))}.",
        )
    return chosen

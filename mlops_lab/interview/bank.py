"""The question bank: numbered Markdown items, gathered from the labs and docs/interview.

Every source uses one format, the one lab debriefs already use::

    1. **"The question?"**
       The model answer: one or more paragraphs, lists or code, indented under the item.

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


def parse_items(text: str) -> list[tuple[str, str]]:
    """(question, answer) per numbered bold item; the answer is everything indented under it."""
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
    return [(question, textwrap.dedent("\n".join(body)).strip()) for question, body in items]


def _questions(path: Path, text: str, topic: str, aliases: tuple[str, ...] = ()) -> list[Question]:
    parsed = parse_items(text)
    if not parsed:
        raise PlatformError(
            f"{path} has no interview questions.",
            hint='Each is a numbered item `1. **"Question?"**` with the answer indented under it.',
        )
    return [
        Question(question_id(topic, q), topic, q, answer, path, aliases) for q, answer in parsed
    ]


def lab_questions(labs_dir: Path = LABS_DIR) -> list[Question]:
    bank = []
    for lab in all_labs(labs_dir):
        text = section(lab.debrief.read_text(), LAB_SECTION)
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

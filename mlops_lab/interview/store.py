"""The learner's boxes, in ``<learner_home>/drill.json`` (outside the platform's data dir, so
`down`, `up` and `clean` never lose them).

Keyed by question id (topic + a hash of the question's text): a reworded question starts as a
new card, and cards of removed questions stay in the file, unused, in case the question returns.
Written and read as every state file is (platform_core.state_file): a crash mid-write never
leaves half a file; a file that cannot be read is moved aside (``drill.json.corrupt-<time>``)
and the drill starts afresh, and a card that cannot be read starts again from box 1, the others
kept, rather than the drill refusing to run.

Still format 1: a card's key-point coverage (``covered`` of ``points``) came later as two optional
fields, so a file written before them loads (its cards were never graded), and a version that
does not know them ignores them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from mlops_lab.interview.schedule import INTERVAL_DAYS, Card
from platform_core import state_file
from platform_core.settings import ENV_PREFIX, REPO_ROOT

FILE_NAME = "drill.json"
FORMAT = 1
WHAT = "interview drill boxes"
LOST_HINT = "A question whose card was lost starts again from box 1."


def learner_home(settings: Any) -> Path:
    """The learner folder: the ``learner_home`` setting, else its environment variable, else
    ``.learner/`` in the repository (the setting's default)."""
    configured = getattr(settings, "learner_home", None)
    if configured is not None:
        return Path(configured)
    from_env = os.environ.get(f"{ENV_PREFIX}LEARNER_HOME")
    return Path(from_env) if from_env else REPO_ROOT / ".learner"


# Checks each field's type (and converts where JSON cannot say it: an int where a float goes).
_CARD = TypeAdapter(Card)


def _card(entry: Any) -> Card:
    if not isinstance(entry, dict):
        raise ValueError(f"not an object: {entry!r:.40}")
    known = {f.name for f in fields(Card)}
    card = _CARD.validate_python({k: v for k, v in entry.items() if k in known})
    if card.box not in INTERVAL_DAYS:
        raise ValueError(f"no box {card.box}")
    covered, points = card.covered, card.points
    if (covered, points) != (None, None) and (
        covered is None or points is None or not 0 <= covered <= points or points < 1
    ):
        raise ValueError(f"covered {covered} of {points} key points")
    return card


class DrillStore:
    def __init__(self, home: Path) -> None:
        self.path = home / FILE_NAME

    def load(self) -> dict[str, Card]:
        document = state_file.read_json(self.path, dict, WHAT, LOST_HINT) or {}
        cards, bad = state_file.read_section(document, "cards", "card", _card)
        if bad:
            state_file.copy_aside(self.path, WHAT, ", ".join(bad), LOST_HINT)
            self.save(cards)
        return cards

    def save(self, cards: dict[str, Card]) -> None:
        document = {
            "format": FORMAT,
            "cards": {card_id: asdict(card) for card_id, card in sorted(cards.items())},
        }
        state_file.write_json(self.path, document, indent=1)

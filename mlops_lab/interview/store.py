"""The learner's boxes, in ``<learner_home>/drill.json`` (outside the platform's data dir, so
`down`, `up` and `clean` never lose them).

Keyed by question id (topic + a hash of the question's text): a reworded question starts as a
new card, and cards of removed questions stay in the file, unused, in case the question returns.
Each save writes a temp file and renames it over the old one, so a crash mid-write never leaves
half a file. A file that cannot be read is moved aside (``drill.json.corrupt-<time>``) and the
drill starts afresh rather than refusing to run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from mlops_lab.interview.schedule import INTERVAL_DAYS, Card
from platform_core.settings import ENV_PREFIX, REPO_ROOT

FILE_NAME = "drill.json"
FORMAT = 1


def learner_home(settings: Any) -> Path:
    """The learner folder: the ``learner_home`` setting, else its environment variable, else
    ``.learner/`` in the repository (the setting's default)."""
    configured = getattr(settings, "learner_home", None)
    if configured is not None:
        return Path(configured)
    from_env = os.environ.get(f"{ENV_PREFIX}LEARNER_HOME")
    return Path(from_env) if from_env else REPO_ROOT / ".learner"


def _card(entry: dict[str, Any]) -> Card:
    known = {f.name for f in fields(Card)}
    card = Card(**{k: v for k, v in entry.items() if k in known})
    if card.box not in INTERVAL_DAYS or not isinstance(card.due, int | float):
        raise ValueError(f"not a card: {entry!r}")
    return card


class DrillStore:
    def __init__(self, home: Path) -> None:
        self.path = home / FILE_NAME
        # Where an unreadable file was moved by the last load, so the CLI can say so.
        self.set_aside: Path | None = None

    def load(self) -> dict[str, Card]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text())
            return {card_id: _card(entry) for card_id, entry in document["cards"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            self.set_aside = self.path.with_name(f"{FILE_NAME}.corrupt-{int(time.time())}")
            self.path.replace(self.set_aside)
            return {}

    def save(self, cards: dict[str, Card]) -> None:
        document = {
            "format": FORMAT,
            "cards": {card_id: asdict(card) for card_id, card in sorted(cards.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".drill-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

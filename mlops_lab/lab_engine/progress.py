"""The learner's progress: kept in the learner folder, outside the platform's data dir, so
`down`, `up` and `clean` never lose it.

One JSON file, written atomically: per lab its status, when it was started and solved, hints
used, check attempts, whether the reference fix was applied, what `start` recorded about the
platform (the evidence a check compares against), and a log of events (started, checked, hinted,
solved) that postmortems draw on.

The lab of a running on-call round is not written under its id: its entry goes, base64-encoded,
to ``sealed``, so a learner glancing at the file does not read which incident it is. That is no
security (anyone can decode it), only no accidental spoiler.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from platform_core.errors import PlatformError

NOT_STARTED = "not started"
IN_PROGRESS = "in progress"
SOLVED = "solved"


@dataclass
class LabProgress:
    status: str = NOT_STARTED
    started_at: float | None = None
    solved_at: float | None = None
    # Every hint taken: hint tiers, and each `check --why` that showed why conditions fail.
    hints_used: int = 0
    # How many tiers of the lab's hints were shown: the next `hint` shows the one after.
    hint_tier: int = 0
    attempts: int = 0
    # Seconds from start to solve of the latest solve.
    seconds_to_solve: float | None = None
    solves: int = 0
    # "lab" or "oncall": how the current or last attempt was started.
    mode: str = "lab"
    # The reference fix (`solve`) was applied during the current or last attempt.
    assisted: bool = False
    # When each solve that followed the reference fix passed (its solved_at): a postmortem of
    # one of them is marked assisted in the portfolio, whatever its text says.
    assisted_solves: list[float] = field(default_factory=list)
    # During an on-call round: the lab's progress as it was before, which listings show.
    before_round: dict[str, Any] = field(default_factory=dict)
    # What start recorded about the platform (versions, times) for check, hints and reset.
    state: dict[str, Any] = field(default_factory=dict)
    # The learner's answers to questions a lab asks (`lab answer`).
    answers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def require_started_at(self) -> float:
        """When the lab was started, which its check, hints and fix measure from. Only a started
        lab has one: a progress file written by hand or by an older version may lack it."""
        if self.started_at is None:
            raise PlatformError(
                "This lab's progress has no start time, and its checks measure from when it "
                "started.",
                hint="Put the platform back with `mlops-lab lab reset ID`, then "
                "`mlops-lab lab start ID` again.",
            )
        return self.started_at

    @property
    def sealed(self) -> bool:
        """In an on-call round: its id is not to be read anywhere until the round ends."""
        return self.mode == "oncall" and self.status == IN_PROGRESS

    def event(self, kind: str, **details: Any) -> None:
        self.events.append({"at": time.time(), "kind": kind, **details})
        del self.events[:-200]


class ProgressStore:
    def __init__(self, learner_home: Path) -> None:
        self.path = learner_home / "progress.json"

    def load(self) -> dict[str, LabProgress]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            entries = dict(raw.get("labs", {}))
            for blob in raw.get("sealed", []):
                entry = json.loads(base64.b64decode(blob, validate=True))
                entries[entry.pop("id")] = entry
        except (ValueError, KeyError, TypeError, AttributeError):
            # Keep the evidence and start afresh rather than refuse every lab command.
            self.path.replace(self.path.with_suffix(".corrupt"))
            return {}
        return {lab_id: _progress(entry) for lab_id, entry in entries.items()}

    def get(self, lab_id: str) -> LabProgress:
        return self.load().get(lab_id, LabProgress())

    def save(self, lab_id: str, progress: LabProgress) -> None:
        labs = self.load()
        labs[lab_id] = progress
        document: dict[str, Any] = {
            "labs": {k: asdict(v) for k, v in sorted(labs.items()) if not v.sealed}
        }
        sealed = [_seal({"id": k, **asdict(v)}) for k, v in sorted(labs.items()) if v.sealed]
        if sealed:
            document["sealed"] = sealed
        self._write(document)

    def in_progress(self) -> list[str]:
        return [lab_id for lab_id, p in self.load().items() if p.status == IN_PROGRESS]

    def _write(self, document: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".progress-")
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
        os.replace(tmp, self.path)


def _progress(entry: dict[str, Any]) -> LabProgress:
    known = set(LabProgress.__dataclass_fields__)
    fields = {k: v for k, v in entry.items() if k in known}
    # Written before hints and reasons were counted apart: every hint taken was a tier.
    fields.setdefault("hint_tier", fields.get("hints_used", 0))
    return LabProgress(**fields)


def _seal(entry: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(entry, sort_keys=True).encode()).decode()

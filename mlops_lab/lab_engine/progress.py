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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from platform_core import state_file
from platform_core.errors import PlatformError

NOT_STARTED = "not started"
IN_PROGRESS = "in progress"
SOLVED = "solved"
STATUSES = (NOT_STARTED, IN_PROGRESS, SOLVED)
MODES = ("lab", "oncall")

WHAT = "lab progress"
LOST_HINT = "A lab left out shows as not started: `mlops-lab lab start ID` starts it again."


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
        """Every lab's progress. A file that cannot be read is set aside; an entry that cannot
        be read is left out, the others kept (the file as it was is kept beside it). Either way
        with a warning, rather than refuse every lab command."""
        document = state_file.read_json(self.path, dict, WHAT, LOST_HINT) or {}
        labs, bad = state_file.read_section(document, "labs", "lab", _progress)
        sealed = document.get("sealed", [])
        if not isinstance(sealed, list):
            bad.append("an on-call round's lab (`sealed` is not an array)")
            sealed = []
        unsealed, refused = state_file.read_entries(dict(enumerate(sealed)), _unseal)
        labs.update(unsealed.values())
        # Not named: the lab of an on-call round is kept from the learner.
        bad += ["an on-call round's lab"] * len(refused)
        if bad:
            state_file.copy_aside(self.path, WHAT, f"the progress of {', '.join(bad)}", LOST_HINT)
            self._write(_document(labs))
        return labs

    def get(self, lab_id: str) -> LabProgress:
        return self.load().get(lab_id, LabProgress())

    def save(self, lab_id: str, progress: LabProgress) -> None:
        labs = self.load()
        labs[lab_id] = progress
        self._write(_document(labs))

    def in_progress(self) -> list[str]:
        return [lab_id for lab_id, p in self.load().items() if p.status == IN_PROGRESS]

    def _write(self, document: dict) -> None:
        state_file.write_json(self.path, document)


# Checks each field's type (and converts where JSON cannot say it: an int where a float goes).
_ENTRY = TypeAdapter(LabProgress)


def _progress(entry: Any) -> LabProgress:
    """One lab's entry as the file holds it; ValueError if it is not one."""
    if not isinstance(entry, dict):
        raise ValueError(f"not an object: {entry!r:.40}")
    known = set(LabProgress.__dataclass_fields__)
    fields = {k: v for k, v in entry.items() if k in known}
    # Written before hints and reasons were counted apart: every hint taken was a tier.
    fields.setdefault("hint_tier", fields.get("hints_used", 0))
    progress = _ENTRY.validate_python(fields)
    if progress.status not in STATUSES or progress.mode not in MODES:
        raise ValueError(f"status {progress.status!r}, mode {progress.mode!r}")
    return progress


def _document(labs: dict[str, LabProgress]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "labs": {k: asdict(v) for k, v in sorted(labs.items()) if not v.sealed}
    }
    sealed = [_seal({"id": k, **asdict(v)}) for k, v in sorted(labs.items()) if v.sealed]
    if sealed:
        document["sealed"] = sealed
    return document


def _seal(entry: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(entry, sort_keys=True).encode()).decode()


def _unseal(blob: Any) -> tuple[str, LabProgress]:
    """ValueError if ``blob`` is not what :func:`_seal` wrote."""
    try:
        entry = json.loads(base64.b64decode(blob, validate=True))
    except TypeError as error:  # not a string
        raise ValueError(str(error)) from None
    lab_id = entry.pop("id", None) if isinstance(entry, dict) else None
    if not isinstance(lab_id, str):
        raise ValueError("no lab id")
    return lab_id, _progress(entry)

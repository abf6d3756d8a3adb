"""The front end's outcomes pipeline: which prediction each known outcome is reported for, and the
outcomes ledger it keeps.

A lender learns what became of a loan (repaid, defaulted) weeks later, in its own systems, and a
feed sends it back to the model platform keyed by the prediction's request id. The feed's join is
a configuration choice here (``outcome_join``): the right one uses the outcome's own request id;
the others are the join bugs such feeds really have (an index off by one, a batch written in the
wrong order, a join on time instead of on the key).

The ledger is the lender's system of record, one JSON line per outcome as it becomes known:
``request_id`` (the application's own prediction), ``outcome`` (1 = defaulted), ``known_at``
(UTC, ISO 8601) and ``reported_for``: the request id the feed reported it for (null when it found
none). It is written before the feed sends, so a label in the prediction log can always be
compared with it, and outcomes reported wrongly can be reported again from it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from platform_core.settings import Settings

OutcomeJoin = Literal["request_id", "previous_request", "reversed_batch", "latest_request"]


@dataclass(frozen=True)
class Known:
    """An outcome that became known: the application's own request, and what the feed can see
    around it when it reports."""

    request_id: str
    outcome: int
    # The request answered just before this one (None for the front end's first).
    previous: str | None
    # When the outcome became known (the front end's monotonic clock).
    due: float


def attach(join: OutcomeJoin, batch: Sequence[Known], answered: AnsweredLog) -> list[str | None]:
    """The request id each outcome of ``batch`` (oldest first) is reported for under ``join``.

    - ``request_id``: its own request (the right join);
    - ``previous_request``: the request answered just before its own (an index off by one);
    - ``reversed_batch``: the outcomes of one report matched to its requests in reverse order;
    - ``latest_request``: the newest request answered when the outcome became known (a join on
      time: with outcomes known later than their answers, always another applicant)."""
    if join == "request_id":
        return [known.request_id for known in batch]
    if join == "previous_request":
        return [known.previous for known in batch]
    if join == "reversed_batch":
        return [known.request_id for known in reversed(batch)]
    if join == "latest_request":
        return [answered.latest_at(known.due) for known in batch]
    raise ValueError(f"unknown outcome join {join!r}")


class AnsweredLog:
    """The request ids the front end got answers for, with when (monotonic), oldest first; only
    the last ``keep_s`` seconds are kept."""

    def __init__(self, keep_s: float = 120.0) -> None:
        self.keep_s = keep_s
        self._times: list[float] = []
        self._ids: list[str] = []

    def add(self, at: float, request_id: str) -> None:
        # Answers arrive nearly in order; insort keeps the log sorted when two cross.
        index = bisect.bisect_right(self._times, at)
        self._times.insert(index, at)
        self._ids.insert(index, request_id)
        cut = bisect.bisect_left(self._times, at - self.keep_s)
        if cut > 1_000:  # trimmed in chunks: a list's front is costly to drop one at a time
            del self._times[:cut], self._ids[:cut]

    def latest_at(self, at: float) -> str | None:
        """The newest request answered at or before ``at``."""
        index = bisect.bisect_right(self._times, at)
        return self._ids[index - 1] if index else None


@dataclass(frozen=True)
class Entry:
    """One line of the ledger."""

    request_id: str
    outcome: int
    known_at: float  # seconds since the epoch
    reported_for: str | None

    def to_line(self) -> str:
        known_at = datetime.fromtimestamp(self.known_at, UTC).isoformat(timespec="milliseconds")
        return json.dumps(
            {
                "request_id": self.request_id,
                "outcome": self.outcome,
                "known_at": known_at,
                "reported_for": self.reported_for,
            }
        )


def ledger_path(settings: Settings) -> Path:
    return settings.paths.outcomes_ledger


def append(path: Path, entries: Iterable[Entry]) -> None:
    """Add entries to the ledger: written whole before this returns (the feed sends after), so a
    reader never finds a label the ledger does not know yet."""
    lines = "".join(entry.to_line() + "\n" for entry in entries)
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(lines)


def read(path: Path, since: float = 0.0) -> Iterator[Entry]:
    """The ledger's entries known since ``since`` (seconds since the epoch), oldest first; a line
    that does not parse (one cut short by a crash) is skipped."""
    if not path.exists():
        return
    with path.open() as handle:
        for line in handle:
            try:
                raw = json.loads(line)
                known_at = datetime.fromisoformat(raw["known_at"]).timestamp()
                entry = Entry(
                    str(raw["request_id"]), int(raw["outcome"]), known_at, raw.get("reported_for")
                )
            except (ValueError, KeyError, TypeError):
                continue
            if known_at >= since:
                yield entry

"""Which alert notifications start a retrain: one incident, one retrain.

Alertmanager notifies again while an alert keeps firing (on ``repeat_interval``, and whenever
the group changes), and two alerts (drift, performance) may describe the same incident. So:

- an incident is one occurrence of an Alertmanager group: its ``groupKey`` plus the earliest
  ``startsAt`` of its firing alerts (:func:`occurrence_key`, also the retrain's idempotency key
  in Prefect). The group key alone is the same every time the alert fires again, so one lost
  "resolved" notification would have kept the group open, and blocked its retrains, for good;
- its alerts are remembered by fingerprint and start time; a firing notification for an open
  incident, or whose alerts all belong to one, is a duplicate;
- an incident closes when its group resolves, or at the latest ``max_open_s`` (6 h) after its
  retrain started: longer than Alertmanager's 4 h ``repeat_interval``, so repeats of a still
  firing alert stay duplicates, while a lost "resolved" costs at most that long. (An occurrence
  still firing after that asks Prefect again, which returns the run it started for that key.)
- a new incident within ``retrain_cooldown_s`` of the last retrain is skipped (Alertmanager
  notifies again later, and the retrain already running may well fix it);
- the book is a JSON file, so a restarted receiver remembers open incidents and the cooldown.

Every decision is returned as a :class:`Decision` for the caller to log and count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, TypeAdapter, ValidationError

from platform_core import state_file

log = logging.getLogger(__name__)

# How long an incident stays open without a "resolved" notification (see the module docstring).
MAX_OPEN_S = 6 * 3600.0


class Action(StrEnum):
    START = "started"
    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"
    FAILED = "failed"
    RESOLVED = "resolved"
    IGNORED = "ignored"


@dataclass(frozen=True)
class AlertInstance:
    """One firing of one alert: Alertmanager's fingerprint plus when it started firing."""

    fingerprint: str
    starts_at: str


@dataclass(frozen=True)
class Decision:
    action: Action
    group_key: str
    alerts: tuple[str, ...]
    reason: str
    at: float = field(default_factory=time.time)
    flow_run_id: str | None = None

    def to_dict(self) -> dict:
        document = asdict(self)
        document["action"] = self.action.value
        document["at"] = datetime.fromtimestamp(self.at, UTC).isoformat()
        return document


def occurrence_key(group_key: str, instances: set[AlertInstance]) -> str:
    """One firing of one Alertmanager group: it stays the same while the group keeps firing
    (alerts may join it), and changes when the group fires again after resolving."""
    first = min(instance.starts_at for instance in instances)
    return f"{group_key}|{first}"


class _Incident(BaseModel):
    """What the book holds of an open incident, checked as a restarted receiver reads it."""

    started_at: float
    flow_run_id: str
    # [fingerprint, starts_at] of each alert it holds.
    instances: list[tuple[str, str]]
    alerts: list[str] = []
    # Books written before occurrence keys were keyed by the group key alone.
    group_key: str | None = None


WHAT = "the alert receiver's incident book"
LOST_HINT = (
    "An incident or cooldown forgotten lets the next alert start a retrain; Prefect still "
    "refuses a second run for the same alert occurrence."
)
_LAST_RETRAIN = TypeAdapter(float | None)


def _group(key: str, incident: dict) -> str:
    # Books written before occurrence keys were keyed by the group key alone.
    return incident.get("group_key", key)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class IncidentBook:
    def __init__(
        self,
        path: Path,
        cooldown_s: float,
        clock: Callable[[], float] = time.time,
        max_open_s: float = MAX_OPEN_S,
    ) -> None:
        self.path = path
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.max_open_s = max_open_s
        self.incidents: dict[str, dict] = {}
        self.last_retrain_at: float | None = None
        self._load()

    # ---- decisions ----------------------------------------------------------------------------

    def on_firing(
        self, group_key: str, alerts: tuple[str, ...], instances: set[AlertInstance]
    ) -> Decision:
        """What to do about a firing notification; :meth:`record_start` once a run is started."""
        now = self.clock()
        if not instances:
            return Decision(Action.IGNORED, group_key, alerts, "no firing alert in it", now)
        self._expire(now)
        key = occurrence_key(group_key, instances)
        if key in self.incidents:
            incident = self.incidents[key]
            return Decision(
                Action.DUPLICATE,
                group_key,
                alerts,
                f"incident already handled: retrain flow run {incident['flow_run_id']} "
                f"started {_iso(incident['started_at'])}",
                now,
                incident["flow_run_id"],
            )
        owner = self._incident_holding(instances)
        if owner is not None:
            incident = self.incidents[owner]
            return Decision(
                Action.DUPLICATE,
                group_key,
                alerts,
                f"these alerts belong to an incident already handled by flow run "
                f"{incident['flow_run_id']}",
                now,
                incident["flow_run_id"],
            )
        if self.last_retrain_at is not None and now - self.last_retrain_at < self.cooldown_s:
            allowed = self.last_retrain_at + self.cooldown_s
            return Decision(
                Action.COOLDOWN,
                group_key,
                alerts,
                f"last retrain started {_iso(self.last_retrain_at)}; cooldown of "
                f"{self.cooldown_s:.0f}s lasts until {_iso(allowed)}",
                now,
            )
        return Decision(Action.START, group_key, alerts, "new incident", now)

    def record_start(
        self, decision: Decision, instances: set[AlertInstance], flow_run_id: str
    ) -> Decision:
        self.incidents[occurrence_key(decision.group_key, instances)] = {
            "group_key": decision.group_key,
            "started_at": decision.at,
            "flow_run_id": flow_run_id,
            "alerts": list(decision.alerts),
            "instances": sorted([i.fingerprint, i.starts_at] for i in instances),
        }
        self.last_retrain_at = decision.at
        self._save()
        return Decision(
            Action.START,
            decision.group_key,
            decision.alerts,
            f"retrain flow run {flow_run_id} started",
            decision.at,
            flow_run_id,
        )

    def on_resolved(self, group_key: str, alerts: tuple[str, ...]) -> Decision:
        """The group resolved: every open occurrence of it is over."""
        closed = [
            key for key, incident in self.incidents.items() if _group(key, incident) == group_key
        ]
        runs = [self.incidents.pop(key)["flow_run_id"] for key in closed]
        self._save()
        reason = (
            f"incident closed (its retrain was flow run {', '.join(runs)})"
            if runs
            else "no retrain was started for it"
        )
        return Decision(
            Action.RESOLVED, group_key, alerts, reason, self.clock(), runs[-1] if runs else None
        )

    def forget(self) -> int:
        """Close every open incident and end the cooldown: what a lab reset does, so that the
        next lab's first incident starts its retrain as on a fresh platform. Returns how many
        incidents were open. (A retrain already started goes on; Prefect's idempotency key still
        refuses a second run for the same alert occurrence.)"""
        closed = len(self.incidents)
        self.incidents = {}
        self.last_retrain_at = None
        self._save()
        return closed

    def _expire(self, now: float) -> None:
        stale = [
            key
            for key, incident in self.incidents.items()
            if now - incident["started_at"] > self.max_open_s
        ]
        for key in stale:
            incident = self.incidents.pop(key)
            log.warning(
                "Incident %s (retrain flow run %s, started %s) got no resolved notification "
                "within %.0fs; closing it so that it blocks no later retrain.",
                key,
                incident["flow_run_id"],
                _iso(incident["started_at"]),
                self.max_open_s,
            )
        if stale:
            self._save()

    def _incident_holding(self, instances: set[AlertInstance]) -> str | None:
        for key, incident in self.incidents.items():
            known = {AlertInstance(fp, start) for fp, start in incident["instances"]}
            if instances <= known:
                return key
        return None

    # ---- persistence --------------------------------------------------------------------------

    def _load(self) -> None:
        """The book as a restarted receiver finds it. A book that cannot be read is set aside
        and one that holds an entry that cannot be read is kept without it (a copy of it as it
        was beside it), each with a warning: a lost cooldown is better than a dead receiver."""
        state = state_file.read_json(self.path, dict, WHAT, LOST_HINT) or {}
        self.incidents, bad = state_file.read_section(state, "incidents", "incident", _incident)
        try:
            self.last_retrain_at = _LAST_RETRAIN.validate_python(state.get("last_retrain_at"))
        except ValidationError:
            bad.append("the last retrain's time (not a number)")
        if bad:
            state_file.copy_aside(self.path, WHAT, ", ".join(bad), LOST_HINT)
            self._save()

    def _save(self) -> None:
        state = {"incidents": self.incidents, "last_retrain_at": self.last_retrain_at}
        # Write then rename: a crash mid-write must not leave a book the receiver cannot read.
        state_file.write_json(self.path, state)


def _incident(entry: object) -> dict:
    return _Incident.model_validate(entry).model_dump(exclude_unset=True, exclude_none=True)

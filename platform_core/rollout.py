"""A rollout in the registry: the ``candidate`` alias and its version's ``rollout_*`` tags.

Serving follows the candidate alias the way it follows ``champion`` (it polls), so a serving
restart or a second replica finds the rollout where the last command left it. The alias is the
switch: a rollout is in progress exactly while it exists. The tags say how the candidate is
tried (``shadow``: it scores every request and answers none; ``canary``: it answers a share of
them), who started it and when, and once it ends, how it ended and why. They are written before
the alias moves and left on the version afterwards, as the record of that rollout.

This module reads the state and ends a rollout, because serving ends one itself when the
candidate cannot be loaded. Starting and promoting belong to the pipelines' registry code
(``pipelines/rollout.py``), next to the quality gate's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from platform_core import contract
from platform_core.settings import Settings

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

Mode = Literal["shadow", "canary"]
SHADOW: Mode = "shadow"
CANARY: Mode = "canary"
MODES: tuple[Mode, ...] = (SHADOW, CANARY)

# Version tags. Values are strings, as MLflow stores them.
TAG_MODE = "rollout_mode"
TAG_PERCENT = "rollout_percent"  # share of requests the candidate answers, canary only
TAG_STARTED_AT = "rollout_started_at"
TAG_STARTED_BY = "rollout_started_by"
TAG_OUTCOME = "rollout_outcome"  # "promoted" or "aborted", once it ended
TAG_ENDED_AT = "rollout_ended_at"
TAG_ENDED_BY = "rollout_ended_by"
TAG_REASON = "rollout_reason"
# The tags of an ended rollout: cleared when the same version is tried again.
END_TAGS = (TAG_OUTCOME, TAG_ENDED_AT, TAG_ENDED_BY, TAG_REASON)
# The automatic decision's last check of a rollout (pipelines/rollout_decision.py): "promote",
# "extend" or "abort", its reasons, and when. Cleared when the same version is tried again.
TAG_LAST_DECISION = "rollout_last_decision"
TAG_LAST_REASONS = "rollout_last_reasons"
TAG_LAST_CHECKED_AT = "rollout_last_checked_at"
CHECK_TAGS = (TAG_LAST_DECISION, TAG_LAST_REASONS, TAG_LAST_CHECKED_AT)

PROMOTED = "promoted"
ABORTED = "aborted"
# A reason is often an error message; the registry UI shows a tag whole, so it is cut short.
_REASON_LIMIT = 2_000


@dataclass(frozen=True)
class Plan:
    """How the candidate is tried: in shadow, or answering ``percent`` % of the requests."""

    mode: Mode
    percent: float = 0.0

    def describe(self) -> str:
        return "shadow" if self.mode == SHADOW else f"canary {self.percent:g}%"

    def tags(self) -> dict[str, str]:
        return {TAG_MODE: self.mode, TAG_PERCENT: f"{self.percent:g}"}

    @classmethod
    def canary(cls, percent: float) -> Plan:
        return cls(CANARY, check_percent(percent))


def check_percent(percent: float) -> float:
    """``percent`` if it is a share a canary can take, else ValueError saying which are."""
    if not math.isfinite(percent) or not 0 < percent <= 100:
        raise ValueError(
            f"a canary answers more than 0 and at most 100 percent of the requests, not {percent:g}"
        )
    return percent


def plan_from_tags(tags: dict[str, str]) -> tuple[Plan, str | None]:
    """The plan a version's tags describe, and what was wrong with them if anything.

    Tags written by hand (the MLflow UI) may be missing or wrong. The candidate is then tried in
    shadow, which exposes nobody to it; the problem is returned for the caller to report.
    """
    mode = tags.get(TAG_MODE, "")
    if mode == SHADOW:
        return Plan(SHADOW), None
    if mode != CANARY:
        found = f"{TAG_MODE}={mode!r}" if mode else f"no {TAG_MODE} tag"
        return Plan(SHADOW), f"{found} (expected one of {', '.join(MODES)}): tried in shadow"
    raw = tags.get(TAG_PERCENT, "")
    try:
        return Plan.canary(float(raw)), None
    except ValueError as error:
        return Plan(SHADOW), f"{TAG_PERCENT}={raw!r} is not a canary share ({error}): in shadow"


@dataclass(frozen=True)
class Rollout:
    """The rollout in progress: which version is the candidate and how it is tried."""

    version: str
    plan: Plan
    started_at: str
    started_by: str
    # What was wrong with the tags, when the plan is a fallback (see plan_from_tags).
    problem: str | None = None
    # The automatic decision's last check ("" until one ran): its action, reasons and time.
    last_decision: str = ""
    last_reasons: str = ""
    last_checked_at: str = ""

    @classmethod
    def of(cls, version: ModelVersion) -> Rollout:
        tags = dict(version.tags or {})
        plan, problem = plan_from_tags(tags)
        return cls(
            version=str(version.version),
            plan=plan,
            started_at=tags.get(TAG_STARTED_AT, ""),
            started_by=tags.get(TAG_STARTED_BY, ""),
            problem=problem,
            last_decision=tags.get(TAG_LAST_DECISION, ""),
            last_reasons=tags.get(TAG_LAST_REASONS, ""),
            last_checked_at=tags.get(TAG_LAST_CHECKED_AT, ""),
        )

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "mode": self.plan.mode,
            "percent": self.plan.percent if self.plan.mode == CANARY else None,
            "started_at": self.started_at or None,
            "started_by": self.started_by or None,
            "problem": self.problem,
            "last_check": {
                "decision": self.last_decision,
                "reasons": self.last_reasons,
                "at": self.last_checked_at,
            }
            if self.last_decision
            else None,
        }


@dataclass(frozen=True)
class Ended:
    """How a past rollout of a version ended, from the tags left on it."""

    version: str
    outcome: str
    ended_at: str
    ended_by: str
    reason: str

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "outcome": self.outcome,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
            "reason": self.reason,
        }


def candidate(client: MlflowClient, settings: Settings) -> ModelVersion | None:
    """The version the candidate alias points at, or None."""
    return contract.version_by_alias(client, settings, settings.candidate_alias)


def current(client: MlflowClient, settings: Settings) -> Rollout | None:
    """The rollout in progress, or None."""
    version = candidate(client, settings)
    return Rollout.of(version) if version is not None else None


def last_ended(client: MlflowClient, settings: Settings) -> Ended | None:
    """The rollout that ended last, from the tags on the versions (None if none ever did)."""
    versions = client.search_model_versions(f"name = {contract.filter_value(settings.model_name)}")
    ended = [
        Ended(
            version=str(v.version),
            outcome=v.tags.get(TAG_OUTCOME, ""),
            ended_at=v.tags.get(TAG_ENDED_AT, ""),
            ended_by=v.tags.get(TAG_ENDED_BY, ""),
            reason=v.tags.get(TAG_REASON, ""),
        )
        for v in versions
        if (v.tags or {}).get(TAG_OUTCOME)
    ]
    return max(ended, key=lambda e: e.ended_at) if ended else None


def end(
    client: MlflowClient, settings: Settings, version: str, outcome: str, by: str, reason: str
) -> bool:
    """End the rollout of ``version``: record how and why on the version, then remove the
    candidate alias. False, with nothing changed, if ``version`` is no longer the candidate
    (another replica or command ended its rollout first)."""
    now = candidate(client, settings)
    if now is None or str(now.version) != version:
        return False
    ended = {
        TAG_OUTCOME: outcome,
        TAG_ENDED_AT: now_utc(),
        TAG_ENDED_BY: by,
        TAG_REASON: reason[:_REASON_LIMIT],
    }
    for key, value in ended.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    client.delete_registered_model_alias(settings.model_name, settings.candidate_alias)
    return True


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

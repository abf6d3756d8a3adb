"""Moving the registry's aliases, with a history that makes rollback trustworthy.

Serving follows ``champion`` by polling, so promoting and rolling back are alias moves, nothing
more. MLflow keeps no record of where an alias pointed before, so every move made here appends
to the registered model's ``champion_history`` tag (versions that were champion, oldest first).
Rollback pops the current champion off that stack and moves the alias to the one below it.
Someone moving the alias in the MLflow UI does not break this: a champion missing from the top
of the stack is pushed first, so rolling back returns to the version before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from platform_core import contract, rollout
from platform_core.errors import PlatformError
from platform_core.settings import Settings

HISTORY_TAG = "champion_history"
# Bounded so the tag stays readable in the MLflow UI; older entries cannot be rolled back to.
_HISTORY_LIMIT = 100

# Version tags recording why a version is (or is not) champion.
# "promoted", "rejected", or with `train --rollout`: "rollout started (shadow)" (or canary N%),
# "passed, not rolled out" (another rollout was in progress); "passed, champion changed" (a person
# promoted or rolled back while the gate scored: pipelines.tasks.CHAMPION_CHANGED).
TAG_GATE_DECISION = "gate_decision"
TAG_GATE_REASON = "gate_reason"
TAG_GATE_MARGIN = "gate_margin"  # the margin over the champion the gate applied, when it had one
TAG_PROMOTED_AT = "promoted_at"
TAG_PROMOTED_BY = "promoted_by"  # "quality gate", "model promote", "model rollback"
TAG_ROLLED_BACK_AT = "rolled_back_at"


@dataclass(frozen=True)
class AliasMove:
    previous: str | None
    current: str

    @property
    def changed(self) -> bool:
        return self.previous != self.current


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    created: datetime
    auc: float | None
    accuracy: float | None
    f1: float | None
    data_source: str
    gate_decision: str
    gate_reason: str

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "aliases": self.aliases,
            "created": self.created.isoformat(),
            "metrics": {"auc": self.auc, "accuracy": self.accuracy, "f1": self.f1},
            "data_source": self.data_source,
            "gate_decision": self.gate_decision,
            "gate_reason": self.gate_reason,
        }


def history(client: MlflowClient, settings: Settings) -> list[str]:
    """Versions that were champion, oldest first (empty before the first promotion)."""
    try:
        model = client.get_registered_model(settings.model_name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    raw = model.tags.get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def _write_history(client: MlflowClient, settings: Settings, versions: list[str]) -> None:
    value = ",".join(versions[-_HISTORY_LIMIT:])
    client.set_registered_model_tag(settings.model_name, HISTORY_TAG, value)


def promote(
    client: MlflowClient, settings: Settings, version: str, by: str, reason: str | None = None
) -> AliasMove:
    """Make ``version`` the champion; its ``challenger`` alias, if any, goes (it won), and so
    does its ``candidate`` alias: a rollout of it ends as promoted, with ``reason`` recorded."""
    current = contract.champion(client, settings)
    previous = current.version if current else None
    if previous == version:
        _end_rollout(client, settings, version, by, reason)
        return AliasMove(previous, version)
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)
    stack = history(client, settings)
    if previous and (not stack or stack[-1] != previous):
        stack.append(previous)
    stack.append(version)
    _write_history(client, settings, stack)
    challenger = contract.version_by_alias(client, settings, settings.challenger_alias)
    if challenger is not None and challenger.version == version:
        client.delete_registered_model_alias(settings.model_name, settings.challenger_alias)
    _tag(client, settings, version, {TAG_PROMOTED_AT: _now(), TAG_PROMOTED_BY: by})
    _end_rollout(client, settings, version, by, reason)
    return AliasMove(previous, version)


def _end_rollout(
    client: MlflowClient, settings: Settings, version: str, by: str, reason: str | None
) -> None:
    """After the champion alias moved: serving answers with the version from its next poll, so
    the candidate alias on it only has to go (nothing happens if another version is the
    candidate)."""
    why = reason or f"promoted by {by}"
    rollout.end(client, settings, version, rollout.PROMOTED, by=by, reason=why)


def mark_challenger(client: MlflowClient, settings: Settings, version: str) -> None:
    client.set_registered_model_alias(settings.model_name, settings.challenger_alias, version)


class NothingToRollBack(PlatformError):
    pass


def rollback(client: MlflowClient, settings: Settings) -> AliasMove:
    """Move ``champion`` back to the previous champion; change nothing if there is none."""
    current = contract.champion(client, settings)
    if current is None:
        raise NothingToRollBack(
            f"{settings.model_name} has no champion, so there is nothing to roll back. "
            "Nothing was changed.",
            hint="Train one with `mlops-lab train`.",
        )
    stack = history(client, settings)
    if not stack or stack[-1] != current.version:
        stack.append(current.version)
    stack.pop()
    existing = {v.version for v in _versions(client, settings)}
    while stack and stack[-1] not in existing:
        stack.pop()  # deleted from the registry since it was champion
    if not stack:
        raise NothingToRollBack(
            f"v{current.version} is the first champion {settings.model_name} has had: there is "
            f"no previous champion to roll back to. Nothing was changed; v{current.version} "
            "stays champion.",
            hint="`mlops-lab model list` shows every version; `mlops-lab model promote VERSION` "
            "moves the champion to any of them.",
        )
    target = stack[-1]
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, target)
    _write_history(client, settings, stack)
    _tag(client, settings, current.version, {TAG_ROLLED_BACK_AT: _now()})
    _tag(client, settings, target, {TAG_PROMOTED_AT: _now(), TAG_PROMOTED_BY: "model rollback"})
    # The previous champion may be the candidate of a rollout: it is the champion now.
    _end_rollout(client, settings, target, "model rollback", None)
    return AliasMove(current.version, target)


def record_decision(
    client: MlflowClient,
    settings: Settings,
    version: str,
    promoted: bool,
    reason: str,
    margin: float | None = None,
    decision: str | None = None,
) -> None:
    """The gate's verdict on the version (registry UI) and on its run (experiment UI):
    ``decision`` when given (what came of a pass other than a promotion), else promoted or
    rejected."""
    decision = decision or ("promoted" if promoted else "rejected")
    tags = {TAG_GATE_DECISION: decision, TAG_GATE_REASON: reason}
    if margin is not None:
        tags[TAG_GATE_MARGIN] = f"{margin:g}"
    _tag(client, settings, version, tags)
    run_id = client.get_model_version(settings.model_name, version).run_id
    if run_id is None:  # registered by hand, without a run: only the version can say it
        return
    client.set_tag(run_id, "gate.decision", decision)
    client.set_tag(run_id, "gate.reason", reason)


def require_version(client: MlflowClient, settings: Settings, version: str) -> None:
    known = [v.version for v in _versions(client, settings)]
    if version not in known:
        listed = ", ".join(sorted(known, key=int)) if known else "none yet"
        raise PlatformError(
            f"{settings.model_name} has no version {version!r} (versions: {listed}).",
            hint="`mlops-lab model list` shows them with their metrics.",
        )


def list_versions(client: MlflowClient, settings: Settings) -> list[VersionRow]:
    """Every version, newest first, with its aliases and held-out metrics."""
    versions = _versions(client, settings)
    if not versions:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(settings.model_name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        rows.append(
            VersionRow(
                version=v.version,
                aliases=sorted(aliases.get(v.version, [])),
                created=datetime.fromtimestamp(v.creation_timestamp / 1000, tz=UTC),
                auc=_float(v.tags.get("test_auc")),
                accuracy=_float(v.tags.get("test_accuracy")),
                f1=_float(v.tags.get("test_f1")),
                data_source=v.tags.get(contract.TAG_DATA_SOURCE, ""),
                gate_decision=v.tags.get(TAG_GATE_DECISION, ""),
                gate_reason=v.tags.get(TAG_GATE_REASON, ""),
            )
        )
    return rows


def _versions(client: MlflowClient, settings: Settings):
    return client.search_model_versions(f"name = {contract.filter_value(settings.model_name)}")


def _tag(client: MlflowClient, settings: Settings, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

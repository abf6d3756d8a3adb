"""Starting, promoting and aborting a rollout: a version tried beside the champion before it
replaces it.

The state lives in the registry (:mod:`platform_core.rollout`: the ``candidate`` alias and the
version's ``rollout_*`` tags) and serving follows it by polling, so these are registry writes,
nothing more. Promoting goes through :func:`pipelines.registry.promote`, the quality gate's own
path, so the champion history that rollback walks stays whole.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from pipelines import registry
from platform_core import contract
from platform_core import rollout as state
from platform_core.errors import PlatformError
from platform_core.model_trust import UntrustedModel
from platform_core.rollout import Plan, Rollout
from platform_core.settings import Settings


class NoRollout(PlatformError):
    pass


# The automatic decision's last check, on the candidate (read back by platform_core.rollout).
TAG_LAST_DECISION = state.TAG_LAST_DECISION
TAG_LAST_REASONS = state.TAG_LAST_REASONS
TAG_LAST_CHECKED_AT = state.TAG_LAST_CHECKED_AT
CHECK_TAGS = state.CHECK_TAGS
# The registry UI shows a tag whole, and MLflow caps a version tag's length.
_REASONS_LIMIT = 2_000


def start(client: MlflowClient, settings: Settings, version: str, plan: Plan, by: str) -> Rollout:
    """Make ``version`` the candidate, tried as ``plan`` says. Starting the version that is
    already the candidate changes how it is tried (a wider canary) and keeps when and by whom
    it was started."""
    registry.require_version(client, settings, version)
    champion = contract.champion(client, settings)
    if champion is None:
        raise PlatformError(
            f"{settings.model_name} has no champion, so there is nothing to try v{version} "
            "beside. Nothing was changed.",
            hint=f"`mlops-lab model promote {version}` makes it the champion directly.",
        )
    if str(champion.version) == version:
        raise PlatformError(
            f"v{version} is already the champion of {settings.model_name}; a rollout tries "
            "another version beside it. Nothing was changed.",
            hint="`mlops-lab model list` shows the versions.",
        )
    running = state.current(client, settings)
    if running is not None and running.version != version:
        raise PlatformError(
            f"v{running.version} is being rolled out ({running.plan.describe()}); one candidate "
            f"at a time. Nothing was changed.",
            hint="Finish it first: `mlops-lab rollout promote` or `mlops-lab rollout abort`.",
        )
    tags = plan.tags()
    if running is None:
        require_trusted(settings, version)
        tags |= {state.TAG_STARTED_AT: state.now_utc(), state.TAG_STARTED_BY: by}
        _clear(client, settings, version, state.END_TAGS + CHECK_TAGS)
    # The tags first: serving reads them as soon as the alias points at the version.
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    if running is None:
        client.set_registered_model_alias(settings.model_name, settings.candidate_alias, version)
    started = state.current(client, settings)
    assert started is not None, "the candidate alias was set just now"
    return started


def promote(
    client: MlflowClient, settings: Settings, by: str, reason: str | None = None
) -> registry.AliasMove:
    """Make the candidate the champion; the rollout ends as promoted, with ``reason``."""
    running = require(client, settings)
    return registry.promote(client, settings, running.version, by=by, reason=reason)


def abort(client: MlflowClient, settings: Settings, by: str, reason: str) -> Rollout:
    """End the rollout: the candidate goes, the champion answers everything at serving's next
    poll. The reason is recorded on the version."""
    running = require(client, settings)
    state.end(client, settings, running.version, state.ABORTED, by=by, reason=reason)
    return running


def record_check(
    client: MlflowClient, settings: Settings, version: str, action: str, reasons: tuple[str, ...]
) -> None:
    """Record the automatic decision's latest check on the candidate: what it decided and why."""
    tags = {
        TAG_LAST_DECISION: action,
        TAG_LAST_REASONS: "; ".join(reasons)[:_REASONS_LIMIT],
        TAG_LAST_CHECKED_AT: state.now_utc(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)


def require_trusted(settings: Settings, version: str) -> None:
    """Load the version with the loader serving uses, so a version serving would refuse is
    refused here, before any rollout starts (serving aborts one that slips past anyway)."""
    try:
        contract.load_sklearn_model(contract.model_uri(settings, version=version))
    except UntrustedModel as refusal:
        raise UntrustedModel(
            f"{refusal.message} So v{version} cannot be a candidate; nothing was changed.",
            hint=refusal.hint,
        ) from None


def require(client: MlflowClient, settings: Settings) -> Rollout:
    running = state.current(client, settings)
    if running is None:
        raise NoRollout(
            f"No rollout of {settings.model_name} is in progress (no version has the alias "
            f"{settings.candidate_alias!r}). Nothing was changed.",
            hint="Start one with `mlops-lab rollout start VERSION --shadow` (or --canary PCT).",
        )
    return running


def _clear(client: MlflowClient, settings: Settings, version: str, keys: tuple[str, ...]) -> None:
    present = client.get_model_version(settings.model_name, version).tags or {}
    for key in keys:
        if key in present:
            client.delete_model_version_tag(settings.model_name, version, key)

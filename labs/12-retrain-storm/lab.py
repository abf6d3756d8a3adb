"""Lab 12: the receiver's cooldown is set to 0 and one incident queues eight retrain runs."""

from __future__ import annotations

import httpx

from mlops_lab.lab_engine.kit import Condition, LabContext, active_runs
from mlops_lab.lab_engine.progress import LabProgress

SERVICE = "alert-receiver"
STORM = 8
# The notifications keep coming: two retrains at once, then one every two minutes. A storm that
# drained by itself in a minute would reward waiting; this one outlasts a quarter of an hour.
AT_ONCE = 2
EVERY_S = 120.0


def start(ctx: LabContext) -> dict:
    from datetime import UTC, datetime, timedelta

    from prefect.deployments import run_deployment

    from monitoring.receiver import RETRAIN_DEPLOYMENT

    ctx.override(SERVICE, {"MLOPS_LAB_RETRAIN_COOLDOWN_S": "0"})
    now = datetime.now(UTC)
    for attempt in range(STORM):
        later = max(0, attempt - AT_ONCE + 1) * EVERY_S
        run_deployment(
            RETRAIN_DEPLOYMENT,
            parameters={"reason": f"alert DataDriftDetected (notification {attempt + 1})"},
            scheduled_time=now + timedelta(seconds=later),
            timeout=0,
        )
    ctx.say(
        '[bold]Lab 12.[/] Platform team: "the training worker is pinned at 100% and the run '
        "queue keeps growing; one drift incident this morning, and it has not stopped "
        'retraining since."'
    )
    return {}


def policy(ctx: LabContext) -> dict:
    url = ctx.settings.url(ctx.settings.alert_receiver_port, "/policy")
    try:
        return httpx.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}


def _unexplained(ctx: LabContext, since: float) -> list[str]:
    from pipelines.registry import TAG_GATE_REASON

    return [
        str(v.version)
        for v in ctx.versions()
        if v.creation_timestamp / 1000 >= since and not (v.tags or {}).get(TAG_GATE_REASON)
    ]


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    runs = ctx.retrain_runs(since)
    active = active_runs(runs)
    cooldown = policy(ctx).get("retrain_cooldown_s")
    floor = 60.0
    unexplained = _unexplained(ctx, since)
    completed = [r for r in runs if r.state and r.state.is_completed()]
    return [
        Condition.of(
            "Prefect still holds the storm's runs",
            len(runs) >= STORM,
            f"{len(runs)} retrain runs since the storm began are on record",
            f"only {len(runs)} retrain runs since the storm began are on record: the timeline "
            "of the incident is gone",
        ),
        Condition.of(
            "at most one retrain is running or waiting",
            len(active) <= 1,
            f"{len(active)} retrain run active",
            f"{len(active)} retrain runs are scheduled, pending or running: "
            + ", ".join(f"{r.name} ({r.state.type.value.lower()})" for r in active[:5]),
        ),
        Condition.of(
            "the storm was stopped before it ran its course",
            len(completed) < STORM,
            f"{len(completed)} of the storm's {len(runs)} retrains ran",
            f"all {len(completed)} retrains ran: the storm ended by itself, after burning the "
            "training worker for every one of them",
        ),
        Condition.of(
            "the receiver spaces its retrains again",
            cooldown is not None and cooldown >= floor,
            f"the alert receiver waits {cooldown:g}s between retrains",
            "the alert receiver does not answer /policy"
            if cooldown is None
            else f"the alert receiver's retrain cooldown is {cooldown:g}s: one flapping alert "
            "can start a retrain per notification",
        ),
        Condition.of(
            "every version since the storm carries its reason",
            not unexplained,
            "every version registered since the storm began has a gate decision and reason",
            f"versions without a recorded reason: {', '.join('v' + v for v in unexplained)} "
            "(a run cancelled mid-registration leaves one: record why, or delete it)",
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    active = active_runs(ctx.retrain_runs(progress.started_at))
    return [
        "Two problems: the queue that exists, and whatever let one incident become a queue. "
        f"Prefect shows {len(active)} retrain runs scheduled, pending or running.",
        f"The alert receiver decides when an alert starts a retrain. Its policy now: "
        f"{policy(ctx)}. What does one incident normally allow?",
        "A service also reads its own configuration file under "
        f"{ctx.settings.home / 'config'}; `mlops-lab restart alert-receiver` applies a change.",
        "Prefect can change a run's state through its API or UI: a Cancelled run never starts. "
        "Then `mlops-lab model list --json` for versions without a gate reason.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    since = progress.require_started_at()
    ctx.clear_overrides()
    # The run in progress may finish (it is one retrain); every queued one is cancelled.
    ctx.cancel_queued(ctx.retrain_runs(since), "retrain storm")
    _explain_orphans(ctx, since)


def _explain_orphans(ctx: LabContext, since: float) -> None:
    from pipelines.registry import TAG_GATE_REASON

    for version in _unexplained(ctx, since):
        ctx.mlflow.set_model_version_tag(
            ctx.settings.model_name, version, TAG_GATE_REASON, "run cancelled in the retrain storm"
        )


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The engine has cancelled the queued runs and golden.restore removes the override; what
    is left is the storm's versions without a reason."""
    if progress.started_at is not None:
        _explain_orphans(ctx, progress.started_at)

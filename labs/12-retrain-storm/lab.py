"""Lab 12: a Prefect automation starts a retrain each time one completes, so retraining never
stops; the incident's own retrains are already queued behind the one running."""

from __future__ import annotations

from mlops_lab.lab_engine.kit import Condition, LabContext, active_runs
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls

# The incident's retrains, queued at once (two notifications of one drift alert); the
# automation then adds one each time a retrain completes, so the queue never drains.
AT_ONCE = 2
AUTOMATION = "retrain-follow-up"


def start(ctx: LabContext) -> dict:
    from prefect.deployments import run_deployment
    from prefect.events.actions import ActionTypes, RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    from monitoring.receiver import RETRAIN_DEPLOYMENT

    # Meant as "retrain once more when the data has moved on"; written as "after every retrain".
    with http_calls.prefect_client() as client:
        retrain = client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
        follow_up: list[ActionTypes] = [
            RunDeployment(
                source="selected",
                deployment_id=retrain.id,
                parameters={"reason": "follow-up of a completed retrain"},
                job_variables=None,
            )
        ]
        automation = client.create_automation(
            AutomationCore(
                name=AUTOMATION,
                description="Keeps the model fresh: once a retrain completes, another one follows.",
                trigger=EventTrigger(
                    expect={"prefect.flow-run.Completed"},
                    match_related={"prefect.resource.id": f"prefect.deployment.{retrain.id}"},
                ),
                actions=follow_up,
            )
        )
    for attempt in range(AT_ONCE):
        run_deployment(
            RETRAIN_DEPLOYMENT,
            parameters={"reason": f"alert DataDriftDetected (notification {attempt + 1})"},
            timeout=0,
        )
    ctx.say(
        "[bold]Lab 12.[/] Platform team: \"the training worker has been busy since this morning's "
        'drift incident and the run queue never gets shorter; it has not stopped retraining."'
    )
    return {"automation": str(automation)}


def await_evidence(ctx: LabContext, state: dict) -> None:
    """The page goes out once the loop has shown itself: a retrain completed and the next one,
    started by nobody but Prefect, is on record."""
    ctx.say("Waiting for the first retrain to complete (a minute or two)…")
    ctx.wait_until(
        lambda: any(_started_by(run, state["automation"]) for run in ctx.retrain_runs()),
        900,
        "a retrain to complete and another to follow it",
        every_s=2.0,
    )


def _started_by(run, automation: str) -> bool:
    creator = run.created_by
    return creator is not None and str(creator.id) == automation


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
    loops = ctx.retrain_loops()
    unexplained = _unexplained(ctx, since)
    return [
        Condition.of(
            "Prefect still holds the storm's runs",
            len(runs) >= AT_ONCE,
            f"{len(runs)} retrain runs since the storm began are on record",
            f"only {len(runs)} retrain runs since the storm began are on record: the timeline "
            "of the incident is gone",
        ),
        Condition.of(
            "nothing starts a retrain each time one ends",
            not loops,
            "no enabled automation reacts to a retrain by starting another",
            "a retrain that completes still starts another: "
            + ", ".join(f"Prefect automation {a.name!r}" for a in loops),
        ),
        Condition.of(
            "at most one retrain is running or waiting",
            len(active) <= 1,
            f"{len(active)} retrain run active",
            f"{len(active)} retrain runs are scheduled, pending or running: "
            + ", ".join(f"{r.name} ({r.state.type.value.lower()})" for r in active[:5]),
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
        "Two problems: the queue that exists, and whatever keeps adding to it. Prefect shows "
        f"{len(active)} retrain runs scheduled, pending or running.",
        "Who created the newest retrain runs? Prefect records it on every run (the run's page "
        "in the UI; `created_by` in the API). Compare it with the runs the alert receiver "
        "started (its /decisions).",
        "Prefect can react to its own events: the Automations page of its UI, or "
        "`prefect automation ls`. What does each one react to, and what does it do?",
        "`prefect automation pause NAME` (or the UI's toggle) stops it without losing it; "
        "then cancel the queued runs (a Cancelled run never starts) and look for versions "
        "without a gate reason in `mlops-lab model list --json`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    since = progress.require_started_at()
    ctx.pause_automations(ctx.retrain_loops())
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
    """The engine has paused the loop and cancelled the queued runs; the lab's automation goes
    (it was the lab's, not the learner's), and the storm's versions get their reason."""
    from uuid import UUID

    made = progress.state.get("automation")
    if made:
        with http_calls.prefect_client() as client:
            if client.read_automation(UUID(made)) is not None:
                client.delete_automation(UUID(made))
    if progress.started_at is not None:
        _explain_orphans(ctx, progress.started_at)

"""Lab 12: a Prefect automation starts a retrain whenever a retrain gets on, so retraining never
stops; the incident's own retrains are already queued behind the one running. The variant says
what sets it off: a retrain's completion (the first), its start, or the completion of any run
carrying a tag every deployment of the platform carries."""

from __future__ import annotations

from collections import Counter

from mlops_lab.lab_engine.kit import Condition, LabContext, active_runs, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls
from platform_core.errors import PlatformError

# What the trigger is narrowed to (how each variant's ``narrowed`` is written in Prefect).
DEPLOYMENT, FLOW, TAG = "deployment", "flow", "tag"
# The deployment the tagged variant's automation was meant for, and the tag its author filtered
# on: the flows service gives it to every deployment it serves (pipelines.runner).
TRAIN_DEPLOYMENT = "train/train"
PLATFORM_TAG = "mlops-lab"

VARIANTS = (
    {
        "name": "retrain-follow-up",
        "description": "Keeps the model fresh: once a retrain completes, another one follows.",
        "event": "prefect.flow-run.Completed",
        "narrowed": DEPLOYMENT,
        "scope": "the `retrain` deployment",
        "reason": "follow-up of a completed retrain",
        "queued": 2,
        "intent": "retrain again once the data has moved on",
        "effect": "Each retrain that completed started the next, so retraining could never "
        "stop by itself.",
        "when": "as the run before it completed",
        "instead": "a retry on `Failed`, with a limit",
        "order": "cancelling the queue first only buys the time until the running retrain "
        "completes, when the automation starts the next one",
    },
    {
        "name": "model-freshness",
        "description": "Trains on the newest data: when a retrain starts, the next one is "
        "queued to pick up what arrives meanwhile.",
        "event": "prefect.flow-run.Running",
        "narrowed": FLOW,
        "scope": "the `retrain` flow",
        "reason": "newest data since the last retrain",
        "queued": 3,
        "intent": "always have a retrain on the newest data next in line",
        "effect": "Its trigger was narrowed by flow, as the UI's flow filter writes it. Each "
        "retrain queued the next the moment it started, before it had done any work: the queue "
        "could never get shorter than it was when the storm began, and a retrain that failed "
        "or was cancelled while running had already left its successor.",
        "when": "seconds after the run before it started, long before that run ended",
        "instead": "a schedule on the `retrain` deployment: fresh data on a clock, not on its "
        "own runs",
        "order": "cancelling the queue alone looks like a fix (nothing is waiting any more) "
        "until anything starts a retrain again: the next drift alert's retrain queues a "
        "successor as soon as it starts",
    },
    {
        "name": "post-training-refresh",
        "description": "Once a training run completes, retrains the new model on recent "
        "traffic so it has seen live applicants.",
        "event": "prefect.flow-run.Completed",
        "narrowed": TAG,
        "scope": f"any flow run tagged `{PLATFORM_TAG}`",
        "reason": "refresh after a training run",
        "queued": 4,
        "intent": "retrain a model trained by hand (the `train` deployment) once on live traffic",
        "effect": f"Its author filtered on the tag the `train` runs showed, `{PLATFORM_TAG}`, "
        "and the flows service gives that tag to every deployment it serves: `train`, "
        "`retrain` and `rollout-decision` alike. Each retrain that completed set it off "
        "again, and so does every scheduled `rollout-decision` run: the queue can only grow.",
        "when": "as a run of any of the platform's deployments completed, a retrain's own included",
        "instead": "the same trigger related to the `train` deployment, not to a tag every "
        "deployment carries",
        "order": "cancelling the queue first only buys the time until the running retrain, or "
        "the next scheduled `rollout-decision` run, completes",
    },
)


def _related(variant: dict, client, retrain) -> dict:
    """The trigger's related-resource filter, as the variant's author wrote it."""
    narrowed = variant["narrowed"]
    if narrowed == DEPLOYMENT:
        return {"prefect.resource.id": f"prefect.deployment.{retrain.id}"}
    if narrowed == FLOW:
        return {
            "prefect.resource.role": "flow",
            "prefect.resource.id": [f"prefect.flow.{retrain.flow_id}"],
        }
    train = client.read_deployment_by_name(TRAIN_DEPLOYMENT)
    if not {PLATFORM_TAG} <= set(train.tags or []) & set(retrain.tags or []):
        raise PlatformError(
            f"The {TRAIN_DEPLOYMENT} and retrain deployments do not both carry the tag "
            f"{PLATFORM_TAG!r} this variant filters on; nothing was changed.",
            hint="`mlops-lab restart flows` registers the deployments again.",
        )
    return {"prefect.resource.role": "tag", "prefect.resource.id": [f"prefect.tag.{PLATFORM_TAG}"]}


def start(ctx: LabContext, variant: dict) -> dict:
    from prefect.deployments import run_deployment
    from prefect.events.actions import ActionTypes, RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    from monitoring.receiver import RETRAIN_DEPLOYMENT

    # Each variant's author meant something reasonable; each trigger sees the retrains it starts.
    with http_calls.prefect_client() as client:
        retrain = client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
        related = _related(variant, client, retrain)
        follow_up: list[ActionTypes] = [
            RunDeployment(
                source="selected",
                deployment_id=retrain.id,
                parameters={"reason": variant["reason"]},
                job_variables=None,
            )
        ]
        automation = client.create_automation(
            AutomationCore(
                name=variant["name"],
                description=variant["description"],
                trigger=EventTrigger(expect={variant["event"]}, match_related=related),
                actions=follow_up,
            )
        )
    # The incident's retrains, queued at once (notifications of one drift alert); the automation
    # then adds to them, so the queue never drains.
    for attempt in range(variant["queued"]):
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
    """The page goes out once the loop has shown itself: a retrain started by nobody but Prefect
    is on record."""
    ctx.say("Waiting for the storm to show in Prefect (a minute or two)…")
    ctx.wait_until(
        lambda: any(_started_by(run, state["automation"]) for run in ctx.retrain_runs()),
        900,
        "a retrain that Prefect started by itself",
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
    queued = variant_of(VARIANTS, progress.state)["queued"]
    runs = ctx.retrain_runs(since)
    active = active_runs(runs)
    loops = ctx.retrain_loops()
    unexplained = _unexplained(ctx, since)
    return [
        Condition.of(
            "Prefect still holds the storm's runs",
            len(runs) >= queued,
            f"{len(runs)} retrain runs since the storm began are on record",
            f"only {len(runs)} retrain runs since the storm began are on record: the timeline "
            "of the incident is gone",
        ),
        Condition.of(
            "no retrain sets off the next one",
            not loops,
            "no enabled automation reacts to a retrain by starting another",
            "a retrain getting on (starting, completing) still starts another: "
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


def _creators(runs: list) -> str:
    """Who created these runs, by the kind Prefect records: "5 created by type AUTOMATION, 2
    with no creator recorded (through the API)"."""
    kinds = Counter(r.created_by.type if r.created_by else None for r in runs)
    return ", ".join(
        f"{n} created by type {kind}" if kind else f"{n} with no creator recorded (the API)"
        for kind, n in kinds.most_common()
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    runs = ctx.retrain_runs(progress.started_at)
    active = active_runs(runs)
    loops = ctx.retrain_loops()
    fed = (
        "Something still adds to it."
        if loops
        else "Nothing adds to it any more: what is left is the queue and what it left behind."
    )
    look = {
        DEPLOYMENT: "Put the times side by side: when was each run it made created, and what had "
        "just happened to the retrain before it?",
        FLOW: "Put the times side by side: when was each run it made created, and what had just "
        "happened to the retrain before it (compare with its start and its end)?",
        TAG: "Its trigger says which runs it reacts to. Which of the platform's deployments match "
        "that filter? (each deployment's page in the UI, or `prefect deployment inspect NAME`)",
    }[variant["narrowed"]]
    names = ", ".join(repr(a.name) for a in loops) or "(none is enabled now)"
    return [
        "Two problems: the queue that exists, and whatever keeps adding to it. Prefect shows "
        f"{len(active)} retrain runs scheduled, pending or running. {fed}",
        "Who created the newest retrain runs? Prefect records it on every run (the run's page "
        "in the UI; `created_by` in the API). Of the "
        f"{len(runs)} since the storm began: {_creators(runs) or 'none'}. Compare them with the "
        "runs the alert receiver started (its /decisions).",
        "Prefect can react to its own events: the Automations page of its UI, or "
        f"`prefect automation ls`. What does each one react to, and what does it do? {look}",
        f"`prefect automation pause NAME` (or the UI's toggle) stops it without losing it: "
        f"{names}. A trigger that keeps the intent must not see the runs it starts "
        f"({variant['instead']}). Then cancel the queued runs (a Cancelled run never starts) "
        "and look for versions without a gate reason in `mlops-lab model list --json`.",
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

"""Lab 18: a release on a 50% canary matches the champion on errors and latency, and beats it
offline, but its training data had every loan of one purpose (small_business in the first
variant) labelled a default (outcomes joined from the charge-off table): it flags nearly every
applicant of that purpose."""

from __future__ import annotations

from mlops_lab.lab_engine.golden import roll_out_release, served_version
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress

# The segment whose training labels were all defaults: which purpose, and its share of traffic.
VARIANTS = (
    {"feature": "loan_purpose", "value": "small_business", "share": "one application in twelve"},
    {"feature": "loan_purpose", "value": "medical", "share": "one application in ten"},
    {"feature": "loan_purpose", "value": "home_improvement", "share": "one application in eight"},
)
RELEASE = "release-2.4.0"
CANARY_PERCENT = 50.0
# What the check keeps of the incident, and what the page waits for: labelled canary answers in
# the segment, enough for the split to tell the versions apart.
MIN_EVIDENCE = 30


def _training_data(rows: int, seed: int, feature: str, value: str):
    """The release's training data: every loan of the segment joined to a default."""
    from pipelines import data

    frame = data.generate(rows, "baseline", seed=seed)
    frame.loc[frame[feature] == value, data.TARGET] = 1
    return frame


def start(ctx: LabContext, variant: dict) -> dict:
    from platform_core.rollout import Plan

    seed = 1818
    frame = _training_data(4_000, seed, variant["feature"], variant["value"])
    plan = Plan.canary(CANARY_PERCENT)
    state = roll_out_release(ctx, frame, seed, RELEASE, "warehouse:loans_2026q3", plan)
    # Outcomes of every application come back (the lender learns them within the day).
    ctx.set_front_end(feedback_share=1.0)
    ctx.say(
        f"[bold]Lab 18.[/] Release 2.4.0 (v{state['candidate']}) answers {CANARY_PERCENT:.0f}% "
        'of the traffic as a canary. The release manager: "no errors, latency flat, better '
        'offline AUC. Can we promote it, yes or no? If no, I need the evidence."'
    )
    return state


def _in_segment(frame, variant: dict):
    if not len(frame):
        return frame
    return frame[frame[variant["feature"]].astype(str) == variant["value"]]


def evidence(ctx: LabContext, progress_or_state) -> int:
    """Labelled answers of the candidate in the segment since the start: the proof."""
    state = getattr(progress_or_state, "state", progress_or_state)
    logged = ctx.logged(state["started_at"], version=state["candidate"], labelled=True)
    return len(_in_segment(logged, variant_of(VARIANTS, state)))


def await_evidence(ctx: LabContext, state: dict) -> None:
    ctx.say(
        "The canary is answering: waiting for its first outcomes to come back (two or three "
        "minutes at the front end's usual rate)…"
    )
    ctx.wait_until(
        lambda: evidence(ctx, state) >= MIN_EVIDENCE,
        600,
        "the canary's first answers and outcomes",
    )


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    from platform_core import rollout as state

    candidate, good = progress.state["candidate"], progress.state["good"]
    running = state.current(ctx.mlflow, ctx.settings)
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    served = served_version(ctx)
    kept = evidence(ctx, progress)
    return [
        Condition.of(
            "the canary's answers and outcomes are still logged",
            kept >= MIN_EVIDENCE,
            f"{kept} labelled answers of v{candidate} kept as evidence",
            f"only {kept} labelled answers of v{candidate} remain in the prediction log: the "
            "evidence of what it decided is gone",
        ),
        Condition.of(
            "the release answers no one",
            (running is None or running.version != candidate) and current != candidate,
            f"v{candidate} is neither champion nor being rolled out",
            f"v{candidate} is champion"
            if current == candidate
            else f"v{candidate} still answers {running.plan.describe() if running else ''}",
        ),
        Condition.of(
            "the champion from before answers everyone",
            current == good and served == good and running is None,
            f"v{good} is champion and answers /predict, with no rollout beside it",
            f"champion {('v' + current) if current else 'none'}, /predict answers with "
            f"{('v' + served) if served else 'nothing'}"
            + (f", v{running.version} still rolled out" if running else "")
            + f"; v{good} was champion before the release",
        ),
        cause_reported("18", progress.answers, variant_of(VARIANTS, progress.state)["value"]),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    candidate = progress.state["candidate"]
    variant = variant_of(VARIANTS, progress.state)
    feature, value = variant["feature"], variant["value"]
    return [
        "Errors and latency say whether a version works, not whether it decides well. What do "
        f"the outcomes that came back say about v{candidate}'s answers? `mlops-lab rollout "
        "status` puts it beside the champion.",
        "Overall it is close. An average over all applicants can hide a group the release "
        "treats very differently: `mlops-lab rollout status --help`, and split the evidence by "
        "each feature in turn.",
        "Look for a group where the candidate's share of applications it predicts will default "
        "is far from the share that really did, while the champion's is not. That is also where "
        "it is wrong most often. Stop it first if you like: the split works on the last rollout "
        "too.",
        f"Where {feature} is {value}, v{candidate} predicts nearly every application a default. "
        "`mlops-lab rollout abort --reason '...'`, then `mlops-lab lab answer 18 "
        f'cause="v{candidate} flags nearly every {feature}={value} applicant: its training '
        'labels marked every such loan a default"`. Its MLflow run is the next question: where '
        "did those labels come from?",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from pipelines import rollout
    from platform_core import rollout as state

    candidate = progress.state["candidate"]
    variant = variant_of(VARIANTS, progress.state)
    feature, value = variant["feature"], variant["value"]
    running = state.current(ctx.mlflow, ctx.settings)
    if running is not None and running.version == candidate:
        rollout.abort(
            ctx.mlflow,
            ctx.settings,
            by="lab solve",
            reason=f"wrong for {feature}={value}: flags nearly every applicant there",
        )
    progress.answers[CAUSE] = (
        f"v{candidate} flags nearly every {feature}={value} applicant as a default (its training "
        "labels marked every such loan a default); errors, latency and the overall AUC hid it"
    )

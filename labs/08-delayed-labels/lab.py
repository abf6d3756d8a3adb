"""Lab 08: the relationship between applications and defaults changes; the inputs do not.

The variants vary what changed (``pipelines.data``): a downturn (the score fades, open credit
lines and short tenure take over), a rate rise (a mortgage's and a long term's effects reverse)
and a repayment that resumed for the young (a step in risk at one age). The applicants are the
baseline's in each, so no input drifts; the old champion's live ROC AUC falls to 0.5 to 0.6,
under the gate's floor, and a refit on a few hundred outcomes since the change scores 0.75 to 0.77.
"""

from __future__ import annotations

import time
from datetime import datetime

from mlops_lab.lab_engine.golden import simulator_ancestor
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from pipelines.lineage import TAG_TRAFFIC_UNTIL

# What happened in the world (the front end's population), as the debrief tells it, and the old
# champion's live ROC AUC since (the lab tests' platform, measured).
VARIANTS = (
    {
        "population": "concept_drift",
        "changed": "in a downturn, credit score stopped separating good from bad borrowers, while "
        "many open credit lines and short tenure started to signal distress",
        "old_auc": "0.56",
    },
    {
        "population": "concept_drift_rates",
        "changed": "rates rose and variable-rate debt repriced: a mortgage and a long loan term, "
        "which meant a lighter monthly burden and less risk, now mean more (their effects "
        "reversed), and credit score separates far less than it did",
        "old_auc": "0.51",
    },
    {
        "population": "concept_drift_age",
        "changed": "a repayment most applicants under 32 owe (student loans) resumed after a "
        "pause, and the debt-to-income they declare leaves it out: risk now jumps below 32, where "
        "it used to fall gently with age, and credit score separates far less than it did",
        "old_auc": "0.58",
    },
)
# Enough labelled rows for a stable recent-only retrain (both classes, a held-out split).
RETRAIN_ROWS = 600


def start(ctx: LabContext, variant: dict) -> dict:
    champion = ctx.require_champion()
    ctx.set_front_end(population=variant["population"], feedback_share=0.6, feedback_delay_s=2.0)
    ctx.say(
        '[bold]Lab 08.[/] Alert: ModelPerformanceDegraded. Collections: "the defaults we see '
        'this month are not the ones the model flags; the drift dashboard says nothing changed."'
    )
    return {"champion": str(champion.version)}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    floor = ctx.settings.gate_min_auc
    window = max(60, int(time.time() - since) + 30)
    seen = ctx.query(f"min_over_time(model_performance_roc_auc_ratio[{window}s]) < {floor}")
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    # Outcomes logged since the change, not a fresh draw from a simulator: a team has no
    # generator of next month's world, only the labelled traffic it has seen.
    until = (champion.tags or {}).get(TAG_TRAFFIC_UNTIL) if champion is not None else None
    oracle = simulator_ancestor(ctx, current, since)
    learned = (
        champion is not None
        and current != progress.state["champion"]
        and until is not None
        and datetime.fromisoformat(until).timestamp() > since
        and oracle is None
    )
    auc, labels = (
        ctx.live_auc(current, max(ctx.promoted_at(champion) or since, since))
        if current
        else (None, 0)
    )
    return [
        Condition.of(
            "the performance signal caught it",
            bool(seen),
            "Prometheus recorded live ROC AUC under the floor during the incident",
            "Prometheus has no record of live ROC AUC under the floor since the lab started "
            "(labels take a moment to arrive; a wiped history loses the evidence)",
        ),
        Condition.of(
            "the champion learned from after the change",
            learned,
            f"v{current} learned from outcomes logged up to {until}, after the change began",
            f"the champion v{current} learned no outcome logged since the change: "
            + (
                "it knows the old world"
                if current == progress.state["champion"]
                else f"its line goes back to v{oracle.version}, trained on the simulator "
                "since the change"
                if oracle is not None
                else "its data holds no traffic from after the change"
            ),
        ),
        Condition.of(
            "live performance is back above the floor",
            auc is not None and auc >= floor,
            f"v{current}: ROC AUC {auc or 0:.3f} on {labels} outcomes since it became champion",
            f"v{current} has {labels} outcomes since it became champion; "
            + (
                f"ROC AUC {auc:.3f} is below the floor {floor}"
                if auc is not None
                else f"at least {ctx.settings.performance_min_labels} are needed to measure it"
            ),
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    status = ctx.drift_status()
    performance = status.get("performance") or {}
    return [
        "Look at both halves of `mlops-lab drift check`: how the inputs compare with training, "
        "and how the predictions compare with the outcomes.",
        f"Inputs drifted: {status.get('dataset_drifted')}; live ROC AUC: "
        f"{performance.get('roc_auc')}. The same applicants, different outcomes: what changed?",
        "A model learns a relationship between features and outcome. If that relationship "
        "changed, which rows should a new model learn from? `mlops-lab retrain --help`.",
        "`mlops-lab retrain --recent-only --traffic-rows N`, with N about the number of outcomes "
        "reported since the change (a few hundred at least). A few hundred rows make a small "
        "held-out set: if the gate refuses by a hair, wait for more outcomes and retrain.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from mlops_lab.lab_engine.golden import retrain_on_recent_outcomes

    retrain_on_recent_outcomes(
        ctx, progress.require_started_at(), RETRAIN_ROWS, "lab 08: concept drift"
    )

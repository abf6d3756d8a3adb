"""Lab 07: a new population applies (long loans, younger, lower incomes in the first variant);
the old model, fitted where none of them ever was, ranks them poorly, and the automatic retrain
is judged on old rows.

The variants vary the segment: each lives in a region of the inputs the old population never
reached (loans over 60 months, applicants under 21, applicants over 75), where the world's one
risk mechanism has terms the old model never saw (``pipelines.data``). Each moves at least half
the features (dataset drift), leaves the old champion's ROC AUC on the segment between 0.59 and
0.69, under the gate's floor, and a refit on a few hundred of its outcomes near 0.8. The
automatic retrain fails each the same way: its held-out rows are mostly the old population, where
the old champion is as good, and each segment's default rate is close to what the old champion
expects of it, so the gain on the segment hardly shows there.
"""

from __future__ import annotations

from datetime import datetime

from mlops_lab.lab_engine.golden import simulator_ancestor
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported
from mlops_lab.lab_engine.progress import LabProgress

# Who applies (the front end's population), what the lender launched, and what the debrief says
# of the segment: where the old population never was, what decides its risk there, which
# features drift, and the old champion's ROC AUC on it (the lab tests' platform, measured).
VARIANTS = (
    {
        "population": "new_segment",
        "launched": "long-term loans",
        "segment": "a long-term product (72- and 84-month loans), and a younger, lower-income "
        "population applies for it",
        "unseen": "No applicant in the old population ever took a loan longer than 60 months",
        "risk": "over six or seven years job stability and debt load decide, and the bureau "
        "score at application says little about year five",
        "drifted": "six of ten features drift at once (age, income, score, employment, loan "
        "amount and term)",
        "old_auc": "0.67",
    },
    {
        "population": "new_segment_young",
        "launched": "loans for first-time borrowers",
        "segment": "first loans to applicants of 18 to 20: student and first jobs, small loans, "
        "a thin credit file",
        "unseen": "No applicant in the old population was under 21",
        "risk": "a thin file's score says little, and how many credit lines an applicant already "
        "juggles decides",
        "drifted": "five of ten features drift at once (age, income, employment, loan amount and "
        "open accounts)",
        "old_auc": "0.59",
    },
    {
        "population": "new_segment_retired",
        "launched": "loans for retirees",
        "segment": "loans to retirees of 76 to 90: pensions for incomes, no employer, mostly "
        "homeowners",
        "unseen": "No applicant in the old population was over 75",
        "risk": "risk rises with age where it used to fall (health, care costs), a loan for "
        "medical bills is the riskiest, and the credit score says little",
        "drifted": "five of ten features drift at once (age, income, employment, loan amount and "
        "home ownership)",
        "old_auc": "0.62",
    },
)
# Labelled outcomes the reference fix waits for: a quarter is held out to judge on.
RETRAIN_ROWS = 400
# What the report of the cause must name, as the platform spells it: what the automatic
# retrain's gate judged it on (the gate's reason, the `evaluated_on` tag, `retrain --evaluate-on`).
# A later automatic retrain, on enough of the new applicants' outcomes, can pass the gate on its
# own (at 20 applications a second within a minute; at the defaults once the cooldown has let a
# second retrain start): waiting for it is not a diagnosis, and the report is what tells them apart.
AT_FAULT = (
    "holdout",
    "held-out",
    "held out",
    "evaluated_on",
    "evaluate-on",
    "evaluated on",
    "test set",
    "test rows",
)


def start(ctx: LabContext, variant: dict) -> dict:
    champion = ctx.require_champion()
    ctx.set_front_end(population=variant["population"], feedback_share=0.9, feedback_delay_s=1.0)
    ctx.say(
        f'[bold]Lab 07.[/] Alert: DataDriftDetected. Product: "we launched {variant["launched"]} '
        "last week and the model is approving the wrong ones. Monitoring started a retrain: did "
        'it help?"'
    )
    return {"champion": str(champion.version)}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    from pipelines import registry
    from pipelines.lineage import TAG_TRAFFIC_UNTIL

    since = progress.require_started_at()
    before = progress.state["champion"]
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    tags = (champion.tags or {}) if champion else {}
    until = _timestamp(tags.get(TAG_TRAFFIC_UNTIL))
    oracle = simulator_ancestor(ctx, current, since)
    learned = (
        current is not None
        and current != before
        and until is not None
        and until > since
        and oracle is None
    )
    fresh = max(until or since, since)
    scores = _compare(ctx, [current, before], fresh) if learned and current is not None else None
    margin = ctx.settings.gate_margin_auc
    beats = scores is not None and scores["auc"][0] - scores["auc"][1] >= margin
    gated = (
        tags.get(registry.TAG_GATE_DECISION) == "promoted"
        and tags.get(registry.TAG_PROMOTED_BY) == "quality gate"
        and _gate_margin(tags) >= margin
    )
    from mlops_lab.lab_engine.golden import served_version

    served = served_version(ctx) if champion is not None else None
    return [
        Condition.of(
            "the drift monitor saw the new applicants",
            ctx.recorded_since("drift_dataset_drifted", since),
            "Prometheus recorded dataset drift during the incident",
            "Prometheus has no record of dataset drift since the lab started (the drift monitor "
            "needs a window of new traffic; a wiped history loses the evidence)",
        ),
        Condition.of(
            "the champion learned from the new applicants",
            learned,
            f"v{current} learned from labelled traffic logged up to "
            f"{tags.get(TAG_TRAFFIC_UNTIL)}, after the change began",
            f"the champion v{current} learned nothing logged since the change: "
            + (
                "it is the model from before"
                if current == before
                else f"its line goes back to v{oracle.version}, trained on the simulator since "
                "the change"
                if oracle is not None
                else "no traffic in its data"
            ),
        ),
        Condition.of(
            "it beats the old champion on the new applicants' outcomes",
            beats,
            _scores_text(scores, current, before) if scores else "",
            _scores_text(scores, current, before)
            if scores
            else f"no comparison yet: it needs a new champion and at least "
            f"{ctx.settings.performance_min_labels} outcomes of both kinds logged after its "
            "training data ends",
        ),
        Condition.of(
            "the quality gate promoted it",
            gated,
            f"v{current} was promoted by the quality gate at its usual margin ({margin:.3f})",
            f"v{current} is the champion from before the incident: no new model was promoted"
            if current == before
            else f"v{current} was not promoted by the quality gate at its usual margin "
            f"{margin:.3f} (promoted by: {tags.get(registry.TAG_PROMOTED_BY) or 'nobody'}): a "
            "gate that is bypassed or loosened protects nothing",
        ),
        Condition.of(
            "serving answers with the champion",
            current is not None and served == current,
            f"/predict answers with v{served}",
            f"/predict answers with {('v' + served) if served else 'nothing'}, not v{current}",
        ),
        cause_reported("07", progress.answers, *AT_FAULT),
    ]


def _timestamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _gate_margin(tags: dict) -> float:
    """The margin over the champion the gate applied, as it recorded it (-1 when it had none:
    a first model, or a version the gate never judged)."""
    from pipelines.registry import TAG_GATE_MARGIN

    try:
        return float(tags.get(TAG_GATE_MARGIN, "-1"))
    except ValueError:
        return -1.0


def _compare(ctx: LabContext, versions: list[str], since: float) -> dict | None:
    """ROC AUC of each version, scored offline on the same labelled traffic logged after
    ``since`` (None while there are too few outcomes, or of one kind only)."""
    from monitoring.performance import measure
    from platform_core import contract

    min_labels = ctx.settings.performance_min_labels
    logged = ctx.logged(since, labelled=True)
    if measure(logged, min_labels).roc_auc is None:
        return None
    aucs = []
    for version in versions:
        model_version = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
        types = contract.load_feature_types(ctx.mlflow, model_version)
        model = contract.load_sklearn_model(contract.model_uri(ctx.settings, version=version))
        features = contract.prepare_features(logged.reindex(columns=types.names), types)
        # The logged answers' outcomes, as this version would have answered them.
        scored = logged.assign(
            prediction=model.predict(features), probability=model.predict_proba(features)[:, 1]
        )
        aucs.append(measure(scored, min_labels).roc_auc)
    return {"auc": aucs, "rows": len(logged)}


def _scores_text(scores: dict, current: str | None, before: str) -> str:
    new, old = scores["auc"]
    return (
        f"on {scores['rows']} outcomes logged after its training data ends: v{current} ROC AUC "
        f"{new:.3f}, v{before} (the champion before) {old:.3f}"
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    from pipelines import registry

    since = progress.require_started_at() * 1000
    retrained = [v for v in ctx.versions() if v.creation_timestamp > since]
    latest = max(retrained, key=lambda v: int(v.version), default=None)
    verdict = (
        f"v{latest.version}: {latest.tags.get(registry.TAG_GATE_REASON, 'no decision yet')}"
        if latest is not None
        else "no new version since the incident began"
    )
    return [
        "Which alert fired, and what did the platform do about it on its own? "
        "`mlops-lab drift check`, `mlops-lab model list`, the retrain runs in Prefect.",
        f"The newest decision of the quality gate: {verdict}. Which applicants were those "
        "held-out rows? Whom does the model serve now?",
        "Judge a model on the population it will serve, and let it learn from that population: "
        "`mlops-lab retrain --help` has options for which rows to learn from and which to be "
        "judged on; a few hundred outcomes have arrived since the change. Then report why the "
        'automatic retrain changed nothing: `mlops-lab lab answer 07 cause="..."`.',
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from mlops_lab.lab_engine.golden import retrain_on_recent_outcomes

    retrain_on_recent_outcomes(
        ctx,
        progress.require_started_at(),
        RETRAIN_ROWS,
        "lab 07: new applicants",
        evaluate_on="recent",
    )
    progress.answers[CAUSE] = (
        "the automatic retrain was judged on held-out rows drawn mostly from the old population "
        "(the champion's reference sample; evaluated_on: holdout), where the new applicants "
        "hardly show, so its gain on them could not pass the gate"
    )

"""Lab 03: a version trained with a preprocessing bug is promoted past the gate."""

from __future__ import annotations

from mlops_lab.lab_engine.golden import (
    live_performance_recovered,
    register_release,
    served_version,
)
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

BUG_TAG = "lab"


def _broken_training_data(rows: int, seed: int):
    """Training data as the buggy pipeline prepared it: credit score inverted."""
    from pipelines import data

    frame = data.generate(rows, "baseline", seed=seed)
    frame["credit_score"] = 1150 - frame["credit_score"]
    return frame


def start(ctx: LabContext) -> dict:
    from pipelines import registry
    from platform_core import contract

    good = ctx.require_champion()
    seed = 303
    version = register_release(
        ctx,
        _broken_training_data(4_000, seed),
        seed,
        tags={
            contract.TAG_DATA_SOURCE: "scenario:baseline",
            contract.TAG_CODE_VERSION: "release-2.3.1",
            BUG_TAG: "03",
        },
        run_name="release-2.3.1",
    )
    registry.promote(ctx.mlflow, ctx.settings, str(version.version), by="model promote")
    ctx.say(
        '[bold]Lab 03.[/] Alert: ModelPerformanceDegraded. Collections: "outcomes we report '
        "back don't match the predictions at all; it says nearly everyone will default.\""
    )
    return {"good": str(good.version), "broken": str(version.version)}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    state = progress.state
    broken, since = state["broken"], progress.require_started_at()
    versions = {str(v.version) for v in ctx.versions()}
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    served = served_version(ctx)
    broken_auc, broken_labels = ctx.live_auc(broken, since)
    return [
        Condition.of(
            "the broken release is still in the registry",
            broken in versions,
            f"v{broken} is kept as evidence",
            f"v{broken} was deleted from the registry: the evidence of the incident is gone",
        ),
        Condition.of(
            "the incident's answers and outcomes are still logged",
            broken_labels >= ctx.settings.performance_min_labels,
            f"{broken_labels} labelled answers of v{broken} remain"
            + (f" (live AUC {broken_auc:.2f})" if broken_auc is not None else ""),
            f"only {broken_labels} labelled answers of v{broken} remain in the prediction log",
        ),
        Condition.of(
            "the champion is not the broken release",
            current is not None and current != broken,
            f"v{current} is champion",
            f"v{broken}, the release the page is about, is still champion"
            if current == broken
            else "there is no champion",
        ),
        Condition.of(
            "serving answers with the champion",
            current is not None and served == current,
            f"/predict answers with v{served}",
            f"/predict answers with {('v' + served) if served else 'an error'}, "
            f"not the champion v{current}",
        ),
        live_performance_recovered(ctx, champion, since),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    from pipelines.registry import TAG_PROMOTED_BY

    champion = ctx.champion()
    current = str(champion.version) if champion else "none"
    by = (champion.tags or {}).get(TAG_PROMOTED_BY, "unknown") if champion else "unknown"
    return [
        "First question in any incident: did something change? `mlops-lab model list` shows "
        "every version and which one is champion.",
        f"The champion is v{current}, made champion by: {by}. Did it pass the quality gate? "
        "Compare its MLflow run with the previous champion's.",
        "Mitigate before you diagnose: serving follows the champion alias, so moving the alias "
        "back is a release in seconds, and it deletes nothing.",
        "`mlops-lab model rollback`, then watch labelled performance recover "
        "(`mlops-lab lab check 03 --wait 120`).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from pipelines import registry

    # A learner rolls back minutes in; the reference fix waits until the incident is on record.
    broken, since = progress.state["broken"], progress.require_started_at()
    ctx.wait_until(
        lambda: ctx.live_auc(broken, since)[1] >= ctx.settings.performance_min_labels,
        180,
        f"labelled answers of v{broken}",
    )
    champion = ctx.champion()
    if champion is not None and str(champion.version) == progress.state["broken"]:
        registry.rollback(ctx.mlflow, ctx.settings)

"""Lab 03: a version trained with a preprocessing bug (the credit score inverted in the first
variant) is promoted past the gate.

Each variant's bug turns the ranking round on live traffic (live ROC AUC well under the gate's
floor, and nearly every applicant scored as a likely default) while its held-out metrics look
as good as the champion's: training and held-out rows went through the same bug. A bug that
only rescales a feature in training (debt-to-income in percent, say) would not do: the model
loses that feature's signal live but still ranks by the others, above the floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_lab.lab_engine.golden import (
    live_performance_recovered,
    register_release,
    served_version,
)
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

if TYPE_CHECKING:
    import pandas as pd

BUG_TAG = "lab"
SEED = 303
ROWS = 4_000
# The release that shipped, which columns its preprocessing got wrong and how, where the bug came
# from, and what the model then makes of a typical live applicant.
VARIANTS = (
    {
        "release": "release-2.3.1",
        "columns": "credit_score",
        "mistake": "inverted",
        "as_trained": "`1150 - credit_score`",
        "origin": "a transformation written for another model's bureau feed, where a higher "
        "number means more risk, ran in this one's pipeline",
        "live": "a typical score of 690 reads to it as the 460 of a poor borrower",
    },
    {
        "release": "release-2.4.0",
        "columns": "debt_to_income, employment_years",
        "mistake": "swapped",
        "as_trained": "each column filled from the other",
        "origin": "the extract was read by column position after its column order changed",
        "live": "six years with the same employer reads to it as debts six times the income",
    },
    {
        "release": "release-2.3.2",
        "columns": "defaulted",
        "mistake": "encoded backwards",
        "as_trained": "1 for a loan repaid, 0 for a default",
        "origin": "the outcomes table's flag means repaid, and it was mapped as if it meant "
        "defaulted",
        "live": "it learned who repays, and reports that as the risk of default",
    },
)


def _broken_training_data(rows: int, seed: int, variant: dict) -> pd.DataFrame:
    """Training data as the buggy pipeline prepared it, held-out rows included."""
    from pipelines import data

    frame = data.generate(rows, "baseline", seed=seed)
    columns = variant["columns"].split(", ")
    if variant["mistake"] == "inverted":
        frame[columns] = 1150 - frame[columns]
    elif variant["mistake"] == "swapped":
        frame[columns] = frame[columns[::-1]].to_numpy()
    else:  # the label encoded backwards
        frame[columns] = 1 - frame[columns]
    return frame


def start(ctx: LabContext, variant: dict) -> dict:
    from pipelines import registry

    good = ctx.require_champion()
    version = register_release(
        ctx,
        _broken_training_data(ROWS, SEED, variant),
        SEED,
        variant["release"],
        tags={BUG_TAG: "03"},
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
        "For the postmortem: its held-out metrics were fine, so the bug went into training and "
        "held-out rows alike. Compare the training samples (each MLflow run's reference "
        f"sample): {_samples_compared(ctx, progress.state)}.",
    ]


def _samples_compared(ctx: LabContext, state: dict) -> str:
    """The mean of each column the variant's bug touched, in the broken release's training
    sample and in the previous champion's (read from the registry as it is now)."""
    from mlflow.exceptions import MlflowException

    from platform_core import contract

    columns = variant_of(VARIANTS, state)["columns"].split(", ")
    broken, good = state["broken"], state["good"]
    try:
        means = {
            version: contract.load_reference(
                ctx.mlflow, ctx.mlflow.get_model_version(ctx.settings.model_name, version)
            )[columns].mean()
            for version in (broken, good)
        }
    except (MlflowException, OSError) as error:  # a version or its run deleted
        return f"v{broken}'s or v{good}'s sample cannot be read ({type(error).__name__})"
    return "; ".join(
        f"{column} averages {means[broken][column]:.3g} in v{broken}'s, "
        f"{means[good][column]:.3g} in v{good}'s"
        for column in columns
    )


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

"""`mlops-lab retrain`: retrain the champion on recent labelled traffic, through the quality gate.

The same flow the alert receiver starts on a drift or performance alert, run by hand: by default
on the champion's reference sample plus the newest labelled predictions; with ``--recent-only``
on the labelled traffic alone, which is what a changed relationship between features and outcome
(concept drift) needs. ``--evaluate-on recent`` judges the new version and the champion on the
newest labelled traffic, held out from training, instead of a random share of the training rows
(mostly the old reference): what a real change of population needs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from mlops_lab.cli.flowrun import follow_serving, run_flow
from mlops_lab.cli.output import done, err, out
from platform_core.settings import get_settings


class EvaluateOn(StrEnum):
    holdout = "holdout"
    recent = "recent"


def retrain(
    recent_only: Annotated[
        bool,
        typer.Option(
            "--recent-only",
            help="Learn from recent labelled traffic alone, without the champion's reference "
            "sample (for concept drift: the old rows teach the old relationship).",
        ),
    ] = False,
    traffic_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Newest labelled predictions to learn from (MLOPS_LAB_RETRAIN_TRAFFIC_ROWS).",
        ),
    ] = None,
    evaluate_on: Annotated[
        EvaluateOn,
        typer.Option(
            "--evaluate-on",
            help="What the new version and the champion are compared on: holdout (a random "
            "quarter of the training rows) or recent (the newest quarter of the labelled "
            "traffic, kept out of training).",
        ),
    ] = EvaluateOn.holdout,
    reason: Annotated[str, typer.Option(help="Why, recorded on the version.")] = "manual",
    seed: Annotated[int | None, typer.Option(help="Seed for the split and the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON on stdout.")] = False,
) -> None:
    """Retrain on recent labelled traffic; the new version goes through the quality gate."""
    from platform_core.probe import require_mlflow, require_prefect

    settings = get_settings()
    require_mlflow(settings)
    require_prefect(settings)
    rows = traffic_rows or settings.retrain_traffic_rows
    what = "recent labelled traffic only" if recent_only else "the reference plus recent traffic"
    judged = "the newest labelled traffic" if evaluate_on == "recent" else "a random holdout"
    err.print(
        f"Retraining {settings.model_name} on {what} (up to {rows:,} rows), judged on {judged}."
    )
    parameters = {"reason": reason, "traffic_rows": rows, "seed": seed, "recent_only": recent_only}
    from mlops_lab.runtime.current import prediction_log_in_reach, runtime_for

    # On a cluster the run reads the cluster's prediction log (it runs in this process).
    with prediction_log_in_reach(settings, runtime_for(settings, console=err)):
        outcome = run_flow("retrain", {**parameters, "evaluate_on": evaluate_on.value})
    err.print(f"MLflow run: {outcome.mlflow_run_url}", highlight=False, soft_wrap=True)
    if outcome.promoted:
        follow_serving(settings, outcome.model_name, outcome.version)
    if as_json:
        out.print_json(json.dumps(outcome.to_dict()))
    done(outcome.summary())

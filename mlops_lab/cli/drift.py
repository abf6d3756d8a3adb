"""`mlops-lab drift check`: the drift check on demand, as a table (and Evidently HTML)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlops_lab.cli.output import done, err, out
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

if TYPE_CHECKING:
    from monitoring.check import CheckOutcome
    from monitoring.drift import DriftResult

app = typer.Typer(help="Data drift of live traffic against the champion's training data.")

# What to do next for each status that leaves no drift to show.
_HINTS = {
    "not_enough_data": "Send traffic first: `mlops-lab traffic`, or lower --window.",
    "no_champion": "Train and promote a model: `mlops-lab train`.",
    "reference_missing": "Train a new version (`mlops-lab train`); it will carry its reference.",
    "mlflow_unreachable": "Start the platform (`mlops-lab up`) or see `mlops-lab status`.",
    "prediction_log_unreachable": "Check MLOPS_LAB_PREDICTION_LOG_URL and `mlops-lab status`.",
}


@app.command()
def check(
    window: Annotated[
        int | None,
        typer.Option(min=10, help="Newest predictions to compare (default: drift_window_rows)."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Also save Evidently's interactive report to this HTML file."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Compare with this model version's reference sample instead of the champion's "
            "(a rollout candidate's, before promoting it).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON on stdout.")] = False,
) -> None:
    """Compare the newest predictions with the champion's reference sample, feature by feature."""
    # Imported here so other commands do not pay for pandas and MLflow (Evidently loads only
    # once there is something to compare).
    from mlops_lab.runtime.current import prediction_log_in_reach, runtime_for
    from monitoring.check import DriftChecker, Status

    settings = get_settings()
    rows = window or settings.drift_window_rows
    with (
        prediction_log_in_reach(settings, runtime_for(settings, console=err)) as settings,
        err.status(
            f"Comparing the newest {rows} predictions with "
            + (f"v{version}'s reference…" if version else "the champion's reference…")
        ),
    ):
        outcome = DriftChecker(settings, version=version).check(
            window_rows=rows, keep_snapshot=html is not None
        )
    if outcome.status != Status.OK or outcome.drift is None:
        hint = _HINTS.get(outcome.status.value)
        if version is not None and outcome.status == Status.NO_CHAMPION:
            hint = "See the versions there are: `mlops-lab model list`."
        raise PlatformError(outcome.message, hint=hint)
    if as_json:
        out.print_json(json.dumps(outcome.to_document(), default=str))
    else:
        out.print(_table(outcome.drift))
        if version is None:
            _print_performance(outcome)
        else:
            # The labelled answers are the champion's: each version's live figures are there.
            err.print("Live performance of each version: `mlops-lab rollout status`.")
    if html is not None and outcome.snapshot is not None:
        from monitoring.drift import save_html

        path = save_html(outcome.snapshot, html)
        err.print(f"Evidently report saved to {path}", highlight=False)
    done(_verdict(outcome.drift, outcome))


def _table(drift: DriftResult) -> Table:
    # The method names the kind (wasserstein: numeric, jensenshannon: categorical); feature
    # names never wrap, so the table stays readable in an 80-column terminal.
    table = Table("Feature", "Method", "Score", "Threshold", "Missing ref→now", "Drift")
    table.columns[0].no_wrap = True
    for f in drift.features:
        score = "-" if math.isnan(f.score) else f"{f.score:.3f}"
        flag = f"[bold red]yes[/] ({f.reason})" if f.drifted else "[green]no[/]"
        table.add_row(
            f.feature,
            f.method,
            score,
            f"{f.threshold:g}",
            f"{f.reference_missing_share:.0%} → {f.missing_share:.0%}",
            flag,
        )
    return table


def _print_performance(outcome: CheckOutcome) -> None:
    performance = outcome.performance
    if performance is None or performance.accuracy is None:
        labelled = performance.labelled_rows if performance else 0
        err.print(f"Performance: {labelled} labelled predictions, not enough to measure.")
        return
    auc = "n/a (one class only)" if performance.roc_auc is None else f"{performance.roc_auc:.3f}"
    out.print(
        f"Performance on {performance.labelled_rows} labelled predictions: "
        f"accuracy {performance.accuracy:.3f}, ROC AUC {auc}",
        highlight=False,
    )


def _verdict(drift: DriftResult, outcome: CheckOutcome) -> str:
    drifted = len(drift.drifted_features)
    share = f"{drifted}/{len(drift.features)} features drifted"
    if drift.dataset_drifted:
        return (
            f"Dataset drift: {share} (share {drift.drifted_share:.2f} ≥ "
            f"{drift.share_threshold:g}), {outcome.window_rows} predictions vs v"
            f"{outcome.model_version}."
        )
    return (
        f"No dataset drift: {share} (threshold share {drift.share_threshold:g}), "
        f"{outcome.window_rows} predictions vs v{outcome.model_version}."
    )

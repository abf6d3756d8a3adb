"""`mlops-lab train`: run the training flow against the platform and say what came of it.

The flow runs in this process, reporting to the platform's Prefect server, so the run shows in
the Prefect UI like any other (:mod:`mlops_lab.cli.flowrun`).

Heavy imports (MLflow, Prefect, scikit-learn: ~10 s) happen inside the command, after the
arguments, the data and the servers are checked, so every other command stays fast and a
mistake is reported at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

import pipelines
from mlops_lab.cli.flowrun import follow_serving, run_flow, say_how_to_follow
from mlops_lab.cli.output import done, err, out
from pipelines.rollout_request import rollout_plan
from platform_core.errors import PlatformError
from platform_core.settings import Settings, get_settings

if TYPE_CHECKING:
    pass

# Prefect's loggers for messages logged inside flow and task runs.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_PIPELINES_DIR = str(Path(pipelines.__file__).resolve().parent)


def train(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Generated data: baseline, covariate_shift, concept_drift, unit_bug, "
            "missing_values or new_category. Default: baseline."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Train on your own CSV instead (needs --target).", dir_okay=False
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="The label column of --data: 0/1, true/false or yes/no.")
    ] = None,
    rows: Annotated[
        int | None, typer.Option(min=1, help="Rows to generate. Default: MLOPS_LAB_DEFAULT_ROWS.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for data, split and model. Default: MLOPS_LAB_RANDOM_SEED."),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            help="The registered model (and experiment) to train. Default: with --data, the "
            "file's name (churn.csv -> churn); otherwise MLOPS_LAB_MODEL_NAME."
        ),
    ] = None,
    rollout: Annotated[
        str | None,
        typer.Option(
            metavar="shadow|canary",
            help="If it passes the quality gate, try it beside the champion (a rollout) instead "
            "of promoting it: the rollout-decision flow promotes or aborts it on live evidence.",
        ),
    ] = None,
    percent: Annotated[
        float | None,
        typer.Option(
            metavar="PCT", help="With --rollout canary: the share of requests it answers (10)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON on stdout.")] = False,
) -> None:
    """Train, evaluate and register a model; make it champion if it passes the quality gate
    (or, with --rollout, start trying it beside the champion)."""
    from pipelines.data import SCENARIOS
    from platform_core.contract import check_model_name
    from platform_core.probe import require_mlflow, require_prefect

    settings = get_settings()
    _check_arguments(scenario, data, target, rows, SCENARIOS)
    rollout_plan(rollout, percent)
    name = check_model_name(model_name or _default_model_name(settings, data))
    parameters: dict = {"seed": seed, "model_name": name}
    if rollout is not None:
        parameters.update(rollout=rollout, rollout_percent=percent)
    if data is not None:
        parameters.update(data=str(data.expanduser().resolve()), target=target)
        what = f"{data} (target {target!r})"
    else:
        parameters.update(scenario=scenario or "baseline", rows=rows)
        what = f"scenario {scenario or 'baseline'} ({rows or settings.default_rows:,} rows)"
    _check_data(settings, parameters)
    require_mlflow(settings)
    require_prefect(settings)
    err.print(f"Training [bold]{escape(name)}[/] on {escape(what)}.", highlight=False)

    outcome = run_flow("train", parameters)
    err.print(f"MLflow run: {outcome.mlflow_run_url}", highlight=False, soft_wrap=True)
    if outcome.model_name != settings.model_name:
        say_how_to_follow(outcome.model_name, settings.model_name)
    elif outcome.promoted:
        follow_serving(settings, outcome.model_name, outcome.version)
    elif outcome.rollout:
        err.print(
            f"Serving tries v{outcome.version} beside the champion from its next poll. "
            f"`mlops-lab rollout status` shows the evidence; the rollout-decision flow weighs it "
            f"every {settings.rollout_check_interval_s:g}s and promotes, extends or aborts.",
            highlight=False,
        )
    if as_json:
        out.print_json(json.dumps(outcome.to_dict()))
    done(outcome.summary())


def _default_model_name(settings: Settings, data: Path | None) -> str:
    """A CSV gets a model of its own, named after the file: it is not a loan-default version
    (the gate would refuse it as not comparable), and serving must not swap one for the other."""
    if data is None:
        return settings.model_name
    return re.sub(r"[^a-z0-9_]+", "-", data.stem.lower()).strip("-") or "csv-model"


def _check_arguments(
    scenario: str | None,
    data: Path | None,
    target: str | None,
    rows: int | None,
    scenarios: tuple[str, ...],
) -> None:
    if data is not None:
        if scenario is not None or rows is not None:
            raise PlatformError(
                "--data trains on your CSV; --scenario and --rows only apply to generated data.",
                hint="Pass either --data FILE --target COLUMN, or --scenario NAME [--rows N].",
            )
        if not target:
            raise PlatformError(
                f"--data {data} needs --target: the name of the column to predict.",
                hint=f"For example: mlops-lab train --data {data} --target defaulted",
            )
        if not data.expanduser().is_file():
            raise PlatformError(f"{data} does not exist or is not a file.", hint="Check the path.")
    elif target is not None:
        raise PlatformError("--target names a column of --data; pass --data FILE too.")
    if scenario is not None and scenario not in scenarios:
        raise PlatformError(
            f"Unknown scenario {scenario!r}.", hint=f"Choose one of: {', '.join(scenarios)}."
        )


def _check_data(settings: Settings, parameters: dict) -> None:
    """Validate the data before any flow run exists: a bad file is reported in a second.

    The flow validates again; runs started from the Prefect UI do not pass through here.
    """
    from pipelines import sources
    from pipelines.validation import validate

    loaded = sources.load(
        parameters.get("scenario", "baseline"),
        parameters.get("data"),
        parameters.get("target"),
        parameters.get("rows") or settings.default_rows,
        settings.random_seed if parameters["seed"] is None else parameters["seed"],
    )
    validate(loaded.frame, loaded.types, settings.min_training_rows, source=loaded.origin)

"""`mlops-lab train`: run the training flow against the platform and say what came of it.

The flow runs in this process, reporting to the platform's Prefect server, so the run shows in
the Prefect UI like any other and its log lines here are the same ones the UI shows. MLflow's
own console chatter is held back and only shown if the run fails unexpectedly.

Heavy imports (MLflow, Prefect, scikit-learn: ~10 s) happen inside the command, after the
arguments, the data and the servers are checked, so every other command stays fast and a
mistake is reported at once.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import pipelines
from mlops_lab.cli.output import done, err, out
from mlops_lab.core.errors import LabError
from mlops_lab.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from pipelines.flows import TrainOutcome

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
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON on stdout.")] = False,
) -> None:
    """Train, evaluate and register a model; make it champion if it passes the quality gate."""
    from mlops_lab.core.probe import require_mlflow, require_prefect
    from pipelines.data import SCENARIOS

    settings = get_settings()
    _check_arguments(scenario, data, target, rows, SCENARIOS)
    parameters: dict = {"seed": seed}
    if data is not None:
        parameters.update(data=str(data.expanduser().resolve()), target=target)
        what = f"{data} (target {target!r})"
    else:
        parameters.update(scenario=scenario or "baseline", rows=rows)
        what = f"scenario {scenario or 'baseline'} ({rows or settings.default_rows:,} rows)"
    _check_data(settings, parameters)
    require_mlflow(settings)
    require_prefect(settings)
    err.print(f"Training [bold]{settings.model_name}[/] on {what}.", highlight=False)

    outcome = _run_train_flow(parameters)
    err.print(f"MLflow run: {outcome.mlflow_run_url}", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(json.dumps(outcome.to_dict()))
    done(outcome.summary())


def _check_arguments(
    scenario: str | None,
    data: Path | None,
    target: str | None,
    rows: int | None,
    scenarios: tuple[str, ...],
) -> None:
    if data is not None:
        if scenario is not None or rows is not None:
            raise LabError(
                "--data trains on your CSV; --scenario and --rows only apply to generated data.",
                hint="Pass either --data FILE --target COLUMN, or --scenario NAME [--rows N].",
            )
        if not target:
            raise LabError(
                f"--data {data} needs --target: the name of the column to predict.",
                hint=f"For example: mlops-lab train --data {data} --target defaulted",
            )
        if not data.expanduser().is_file():
            raise LabError(f"{data} does not exist or is not a file.", hint="Check the path.")
    elif target is not None:
        raise LabError("--target names a column of --data; pass --data FILE too.")
    if scenario is not None and scenario not in scenarios:
        raise LabError(
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


def _run_train_flow(parameters: dict) -> TrainOutcome:
    """Run the flow with a spinner, printing its own log lines above it."""
    console = Console(file=sys.stderr)  # bound now: library output below is redirected
    captured = io.StringIO()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress, _captured_output(captured):
        step = progress.add_task("Loading MLflow, Prefect and scikit-learn", total=None)
        # Imported before the log handler is attached: Prefect configures its loggers on import.
        from pipelines.flows import train as train_flow

        progress.update(step, description="Training")
        with _forward_run_logs(_FlowLogHandler(console)), _quiet_libraries():
            try:
                return train_flow(**parameters)
            except LabError:
                raise
            except Exception:
                # Unexpected: show what the libraries printed, it usually names the cause.
                console.print(captured.getvalue(), markup=False, highlight=False)
                raise


class _FlowLogHandler(logging.Handler):
    """Prints the pipeline's own log lines (not Prefect's engine chatter) as indented steps."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("View at "):
            url = message.removeprefix("View at ")
            self.console.print(f"  Prefect run: {url}", highlight=False, soft_wrap=True)
        elif record.pathname.startswith(_PIPELINES_DIR):
            style = "yellow" if record.levelno >= logging.WARNING else ""
            self.console.print(
                f"  {message}", style=style, markup=False, highlight=False, soft_wrap=True
            )


@contextlib.contextmanager
def _forward_run_logs(handler: logging.Handler) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _RUN_LOGGERS]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        # Prefect's console handler sits on the root logger: stop a second, noisier copy.
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """MLflow logs at INFO (uv detection, run links) and warns about pip; all noise here."""
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        mlflow_logger.setLevel(level)


@contextlib.contextmanager
def _captured_output(buffer: io.StringIO) -> Iterator[None]:
    """MLflow prints run links and registration notes straight to stdout and stderr."""
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield

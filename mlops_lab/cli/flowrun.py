"""Running a training flow from the CLI, and following serving until it answers with the result.

The flow runs in this process, reporting to the platform's Prefect server, so the run shows in
the Prefect UI like any other and its log lines here are the same ones the UI shows. MLflow's
own console chatter is held back and only shown if the run fails unexpectedly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import pipelines
from mlops_lab.cli.output import err
from platform_core import http_calls
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from platform_core.waiting import TimedOut, poll

if TYPE_CHECKING:
    from pipelines.flows import TrainOutcome

# Prefect's loggers for messages logged inside flow and task runs.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_PIPELINES_DIR = str(Path(pipelines.__file__).resolve().parent)


# Serving's gauge of the version it answers with, labelled with the model it follows.
_SERVED = re.compile(r'^serving_model_version\{model_name="((?:[^"\\]|\\.)*)"\} (\S+)$', re.M)


def _served(settings: Settings) -> tuple[str, str] | None:
    """(model, version) serving answers with, from its /metrics; None if serving does not answer."""
    try:
        response = http_calls.get(settings.url(settings.serving_port, "/metrics"), timeout=2.0)
    except httpx.HTTPError:
        return None
    match = _SERVED.search(response.text) if response.is_success else None
    if match is None:
        return None
    name = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], match[1])
    return name, str(int(float(match[2])))


def say_how_to_follow(model_name: str, followed: str) -> None:
    err.print(
        f"Serving, drift monitoring, traffic and `mlops-lab model` follow {followed}, not "
        f"{model_name}. To make them follow {model_name}: set MLOPS_LAB_MODEL_NAME={model_name} "
        "(in .env or your shell), then `make down && make up`.",
        highlight=False,
        markup=False,
    )


def follow_serving(settings: Settings, model_name: str, version: str) -> None:
    """Wait until serving answers with the new champion, so the next step (traffic) works.

    Serving polls the registry every alias_poll_interval_s, then loads the model: three polls
    plus a generous load time bound the wait. Not running, or following another model, is said
    plainly and is not a failure: the version is champion either way.
    """
    interval_s = settings.alias_poll_interval_s
    served = _served(settings)
    if served is None:
        err.print(
            f"Serving is not running: it will pick up {model_name} v{version} within "
            f"{interval_s:.0f} s once running (`make up`).",
            highlight=False,
        )
        return
    if served[0] != model_name:
        say_how_to_follow(model_name, served[0])
        return

    def serves_it() -> bool:
        nonlocal served
        served = _served(settings)
        return served is not None and served[1] == version

    timeout_s = 3 * interval_s + 45
    now = f"v{served[1]}" if served[1] != "0" else "no model yet"
    with err.status(f"Waiting for serving to load v{version} (it serves {now})"):
        try:
            poll(serves_it, timeout_s, every_s=0.5, tolerate=())
        except TimedOut:
            now = f"v{served[1]}" if served else "nothing (not answering)"
            err.print(
                f"Serving still answers with {now} after {timeout_s:.0f} s; v{version} is "
                "champion and will be served once loaded. `make status` shows what serving "
                "is doing.",
                style="yellow",
                highlight=False,
            )
            return
    err.print(f"Serving answers with {model_name} v{version}.", highlight=False, markup=False)


def run_flow(name: str, parameters: dict) -> TrainOutcome:
    """Run the flow ``train`` or ``retrain`` in this process with a spinner, printing its own
    log lines above it."""
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
        from pipelines import flows

        flow = {"train": flows.train, "retrain": flows.retrain}[name]
        progress.update(step, description="Training")
        with _forward_run_logs(_FlowLogHandler(console)), _quiet_libraries():
            try:
                return flow(**parameters)
            except PlatformError:
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

"""The `mlops-lab` command."""

from __future__ import annotations

import logging
import os

import typer

from mlops_lab.cli import (
    backup,
    bench,
    exam,
    lab,
    model,
    oncall,
    platform,
    postmortem,
    retrain,
    rollout,
    traffic,
    train,
)
from mlops_lab.cli.drift import app as drift_app
from mlops_lab.cli.interview import app as interview_app
from mlops_lab.cli.output import WarningsOnConsole, err, print_error
from mlops_lab.runtime.current import carry_over_old_names
from platform_core import state_file
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

app = typer.Typer(
    name="mlops-lab",
    help="An MLOps platform on your machine, and labs that break it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _point_clients_at_this_platform() -> None:
    """MLflow and Prefect clients inside every command talk to the platform the settings name;
    what an earlier release named otherwise in the data dir is moved once, with a line saying so."""
    settings = get_settings()
    os.environ.update(settings.to_env())
    for move in carry_over_old_names(settings):
        err.print(f"Renamed since your last run: {move}", highlight=False)


app.command()(platform.up)
app.command()(platform.down)
app.command()(platform.status)
app.command()(platform.logs)
app.command()(platform.restart)
app.command()(platform.clean)
app.add_typer(backup.app, name="backup")
app.command()(traffic.traffic)
app.add_typer(drift_app, name="drift")
app.command()(train.train)
app.command()(retrain.retrain)
app.add_typer(model.app, name="model")
app.add_typer(rollout.app, name="rollout")
app.add_typer(lab.app, name="lab")
app.add_typer(interview_app, name="interview")
app.add_typer(oncall.app, name="oncall")
app.add_typer(exam.app, name="exam")
app.command()(postmortem.postmortem)
app.command()(postmortem.portfolio)
app.command()(bench.bench)


def run() -> None:
    """Console entry point: errors a user can fix are shown as a message, not a traceback."""
    # A state file set aside is said once, on the console (not also by a root handler).
    warnings = logging.getLogger(state_file.__name__)
    warnings.addHandler(WarningsOnConsole())
    warnings.propagate = False
    try:
        app()
    except PlatformError as error:
        print_error(error)
        raise SystemExit(1) from None

"""`mlops-lab oncall ...`: get paged with a random incident, find it, fix it, against the clock.

Until the check passes (or you give up) nothing here names the lab: you get the page, the time it
started and where the tools are, as an on-call engineer does.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from mlops_lab.cli.output import (
    Wait,
    checking,
    conditions_json,
    done,
    err,
    out,
    print_conditions,
)
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

app = typer.Typer(help="A mock on-call shift: a random incident, named only once you fix it.")


def _oncall():
    from mlops_lab.interview.oncall import Oncall

    return Oncall(get_settings(), console=err)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _show_page(oncall, round_) -> None:
    table = Table(box=box.ROUNDED, show_header=False, title="[bold red]You are paged[/]")
    table.add_column(style="bold")
    table.add_column()
    for key, value in oncall.page(round_).items():
        table.add_row(key.capitalize(), value)
    table.add_row("Started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(round_.started_at)))
    for name, url in oncall.urls():
        table.add_row(name, url)
    out.print(table)


@app.command()
def start(
    include_solved: Annotated[
        bool,
        typer.Option(
            "--include-solved", help="Also page with incidents you have solved (practice again)."
        ),
    ] = False,
) -> None:
    """Break the platform with a random incident you have not solved; shows only the page."""
    oncall = _oncall()
    with err.status("Waiting for the pager… (something is breaking; up to a minute)"):
        round_ = oncall.start(include_solved=include_solved)
    _show_page(oncall, round_)
    done(
        "The clock runs. `mlops-lab oncall check` when you think it is fixed; "
        "`mlops-lab oncall hint` if you are stuck; `mlops-lab oncall status` shows the page again."
    )


@app.command()
def status() -> None:
    """The page again, how long the incident has been running and how many hints you took."""
    oncall = _oncall()
    round_ = oncall.current()
    if round_ is None:
        done("No on-call round is running. `mlops-lab oncall start` pages you.")
        return
    _show_page(oncall, round_)
    done(
        f"On call for {_clock(round_.elapsed_s)}, {oncall.hints_used(round_)} hints used. "
        "`mlops-lab oncall check` when it is fixed."
    )


@app.command()
def hint() -> None:
    """The next hint for the incident (they are counted), without naming it."""
    tier, tiers, text = _oncall().hint()
    out.print(f"[bold]Hint {tier}/{tiers}[/]: {text}", highlight=False)
    done(f"{tier} of {tiers} hints used on this incident.")


@app.command()
def check(
    wait: Wait = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="The conditions as JSON.")] = False,
) -> None:
    """Check the fix (read-only). Solved: the lab is named, with your time and hints."""
    oncall = _oncall()
    round_ = oncall.require_current()
    report = checking("the incident", lambda pending: oncall.check(wait_s=wait, on_pending=pending))
    if as_json:
        # The lab's id only in a passing report: the outcome statements give nothing away.
        document = {
            "passed": report.passed,
            "conditions": conditions_json(report.conditions),
        }
        if report.passed:
            document["lab"] = round_.lab.id
        out.print_json(json.dumps(document))
    print_conditions(report.conditions)
    if not report.passed:
        failed = sum(not c.passed for c in report.conditions)
        raise PlatformError(
            f"Not fixed yet: {failed} of {len(report.conditions)} conditions fail, "
            f"{_clock(round_.elapsed_s)} into the incident.",
            hint="`mlops-lab oncall hint` for a hint; `mlops-lab oncall giveup` to end the round.",
        )
    progress = oncall.engine.store.get(round_.lab.id)
    lab = round_.lab
    err.print(f"[bold]It was lab {lab.id}: {lab.title}[/]", highlight=False)
    done(
        f"Incident over in {_clock(progress.seconds_to_solve or round_.elapsed_s)} with "
        f"{progress.hints_used} hints. Write it up: `mlops-lab postmortem {lab.id}`; "
        f"then read the debrief: `mlops-lab lab debrief {lab.id}`."
    )


@app.command()
def giveup() -> None:
    """End the round: names the lab and puts the platform back in its golden state."""
    oncall = _oncall()
    with err.status("Putting the platform back…"):
        round_ = oncall.giveup()
    lab = round_.lab
    err.print(f"[bold]It was lab {lab.id}: {lab.title}[/]", highlight=False)
    done(
        f"Round over after {_clock(round_.elapsed_s)}; the platform is back in its golden state. "
        f"Read the incident: {lab.readme}; try it again: `mlops-lab lab start {lab.id}`."
    )

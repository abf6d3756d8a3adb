"""How every command talks to the user: Rich on stderr for progress, stdout for results."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from platform_core.errors import PlatformError

# Progress and errors go to stderr so `--json` output on stdout stays machine-readable.
err = Console(stderr=True)
out = Console()


def print_error(error: PlatformError) -> None:
    err.print(f"[bold red]Error:[/] {error.message}", highlight=False)
    if error.hint:
        err.print(f"[yellow]→[/] {error.hint}", highlight=False)


class WarningsOnConsole(logging.Handler):
    """What a module below the CLI warns about while a command runs (a state file it could not
    read and set aside: platform_core.state_file), printed like the command's own messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]![/] {escape(record.getMessage())}", highlight=False)


def done(message: str) -> None:
    """The one-line result every command ends with."""
    err.print(f"[bold green]✓[/] {message}", highlight=False)


def print_conditions(conditions, why: bool = False) -> None:
    """A check's conditions, one line each: OK or NO and the name. A passed one's detail follows
    (it gives nothing away); a failing one's only when asked for (``--why``), as it is a hint."""
    for c in conditions:
        if c.passed:
            err.print(f"[green]OK[/] {c.name}: {c.detail}", highlight=False)
        else:
            err.print(f"[red]NO[/] {c.name}" + (f": {c.detail}" if why else ""), highlight=False)


def conditions_json(conditions, why: bool = False) -> list[dict]:
    """The same rule as :func:`print_conditions`: a failing condition's detail is null unless
    asked for."""
    return [
        {"name": c.name, "passed": c.passed, "detail": c.detail if c.passed or why else None}
        for c in conditions
    ]


# `check --why`: the reasons behind each NO, counted as a hint.
Why = Annotated[
    bool,
    typer.Option(
        "--why",
        help="Also say why each failing condition fails. It often names the fault, so it "
        "counts as a hint.",
    ),
]


def checking(what: str, run):
    """Run ``run(on_pending)`` under a spinner that names what is still pending."""
    with err.status(f"Checking {what}…") as spinner:

        def pending(report) -> None:
            still = [c.name for c in report.conditions if not c.passed]
            spinner.update(f"Checking {what}: still pending: {', '.join(still)}")

        return run(pending)


# `check --wait`: a correct fix must not fail because a scrape or an alert has not caught up.
Wait = Annotated[
    float,
    typer.Option(
        min=0,
        help="Keep checking for up to this many seconds while something is still pending "
        "(a scrape, an alert resolving).",
    ),
]

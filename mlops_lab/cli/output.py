"""How every command talks to the user: Rich on stderr for progress, stdout for results."""

from __future__ import annotations

from rich.console import Console

from mlops_lab.core.errors import LabError

# Progress and errors go to stderr so `--json` output on stdout stays machine-readable.
err = Console(stderr=True)
out = Console()


def print_error(error: LabError) -> None:
    err.print(f"[bold red]Error:[/] {error.message}", highlight=False)
    if error.hint:
        err.print(f"[yellow]→[/] {error.hint}", highlight=False)


def done(message: str) -> None:
    """The one-line result every command ends with."""
    err.print(f"[bold green]✓[/] {message}", highlight=False)

"""Platform lifecycle commands: up, down, status, logs, clean."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from mlops_lab.cli.output import done, err, out
from mlops_lab.core.errors import LabError
from mlops_lab.core.settings import get_settings
from mlops_lab.runtime.local import LocalRuntime, ServiceStatus, tail
from mlops_lab.runtime.selection import RuntimeName, RuntimeUnavailable, choose
from monitoring.configs import grafana_admin_password


def up(
    runtime: Annotated[
        RuntimeName,
        typer.Option(
            help="auto picks kind only when Docker, kind, kubectl and "
            "terraform are all there; otherwise local."
        ),
    ] = RuntimeName.auto,
) -> None:
    """Start the platform and wait until every service is healthy."""
    try:
        choice = choose(runtime)
    except RuntimeUnavailable as error:
        raise LabError(str(error)) from error
    err.print(f"Runtime: [bold]{choice.runtime.value}[/] ({choice.reason})", highlight=False)
    settings = get_settings()
    local = LocalRuntime(settings, console=err)
    result = local.up()
    _print_urls(local.status())
    if result.already_running:
        done("Everything is already running; nothing was changed.")
    else:
        done(f"Platform is up ({len(result.started)} services healthy in {result.seconds:.1f}s).")


def down() -> None:
    """Stop every service. Data (runs, models, flow history, metrics) is kept."""
    if LocalRuntime(get_settings(), console=err).down():
        done("Platform stopped; data kept. `mlops-lab up` starts it again.")
    else:
        done("Nothing was running.")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """Show each service: URL, process state and health."""
    rows = LocalRuntime(get_settings(), console=err).status()
    if as_json:
        out.print_json(json.dumps([row.to_dict() for row in rows]))
        return
    table = Table("Service", "URL", "State", "Health")
    table.columns[1].no_wrap = True
    for row in rows:
        health = "[green]healthy[/]" if row.healthy else f"[red]unhealthy[/] ({row.detail})"
        if row.state == "not installed":
            health = "[dim]optional[/]"
        table.add_row(row.title, row.url, row.state, health)
    out.print(table)
    installed = [r for r in rows if r.state != "not installed"]
    for row in rows:
        if row.state == "not installed":
            err.print(f"{row.title} is not installed ({row.detail}).", highlight=False)
    healthy = sum(r.healthy for r in installed)
    done(f"{healthy}/{len(installed)} services healthy.")


def logs(
    service: Annotated[str, typer.Argument(help="mlflow, prefect, prometheus, ... or supervisord")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines to show.")] = 50,
) -> None:
    """Show a service's log."""
    path = LocalRuntime(get_settings(), console=err).log_path(service)
    for line in tail(path, lines):
        typer.echo(line)
    if follow:
        _follow(path)


def clean(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Stop everything and delete all platform data (runs, models, history, metrics)."""
    settings = get_settings()
    if not yes:
        typer.confirm(f"Delete {settings.home} and everything in it?", abort=True)
    if LocalRuntime(settings, console=err).clean():
        done(f"Deleted {settings.home}.")
    else:
        done("Nothing to delete.")


def _print_urls(rows: list[ServiceStatus]) -> None:
    table = Table("Service", "URL", box=None)
    for row in rows:
        if row.state == "not installed":
            table.add_row(row.title, "[dim]not installed (see `mlops-lab status`)[/]")
        elif row.name == "grafana":
            password = grafana_admin_password(get_settings())
            table.add_row(row.title, f"{row.url}  (anonymous view; admin / {password})")
        else:
            table.add_row(row.title, row.url)
    err.print(table)


def _follow(path) -> None:
    position = path.stat().st_size if path.exists() else 0
    try:
        while True:
            if path.exists():
                size = path.stat().st_size
                if size < position:  # rotated
                    position = 0
                if size > position:
                    with path.open(errors="replace") as handle:
                        handle.seek(position)
                        typer.echo(handle.read(), nl=False)
                        position = handle.tell()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass

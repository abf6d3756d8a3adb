"""`mlops-lab model ...`: see the registered versions and move the champion by hand.

Promotion normally happens in the training flow's quality gate. These commands are the human
override: ``promote`` when you know better than the gate, ``rollback`` when the new champion
misbehaves in production. Serving follows the alias within seconds; nothing is redeployed.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from mlops_lab.cli.output import done, err, out
from platform_core.settings import Settings, get_settings

app = typer.Typer(help="List model versions, promote one, or roll the champion back.")


def registry_client(settings: Settings):
    """An MLflow client, once MLflow answers (imported here: MLflow takes seconds to import)."""
    from platform_core import contract, mlflow_client
    from platform_core.probe import require_mlflow

    require_mlflow(settings)
    mlflow_client.apply(mlflow_client.PIPELINE)
    return contract.client_for(settings)


@app.command("list")
def list_versions(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """Every version, newest first: aliases, held-out metrics, data source, created time.

    The JSON form adds each version's quality-gate decision."""
    from pipelines import registry

    settings = get_settings()
    rows = registry.list_versions(registry_client(settings), settings)
    if as_json:
        out.print_json(json.dumps([row.to_dict() for row in rows]))
    elif rows:
        out.print(_table(rows, settings))
    if not rows:
        done(f"{settings.model_name} has no versions yet; `mlops-lab train` registers one.")
        return
    champion = next((r.version for r in rows if settings.champion_alias in r.aliases), None)
    where = f"champion is v{champion}" if champion else "no champion"
    done(f"{len(rows)} versions of {settings.model_name}; {where}.")


def _table(rows, settings: Settings) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("Version", no_wrap=True)
    table.add_column("Aliases", no_wrap=True)
    for metric in ("AUC", "Accuracy", "F1"):
        table.add_column(metric, justify="right", no_wrap=True, min_width=5)
    table.add_column("Data", overflow="ellipsis", max_width=18, no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True, min_width=16)
    for row in rows:
        aliases = ", ".join(
            f"[bold green]{a}[/]" if a == settings.champion_alias else a for a in row.aliases
        )
        table.add_row(
            f"v{row.version}",
            aliases,
            *(f"{v:.3f}" if v is not None else "-" for v in (row.auc, row.accuracy, row.f1)),
            row.data_source,
            row.created.strftime("%Y-%m-%d %H:%M"),
        )
    return table


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make champion, e.g. 3 or v3.")],
) -> None:
    """Make VERSION the champion, bypassing the quality gate (rollback undoes it)."""
    from pipelines import registry

    settings = get_settings()
    client = registry_client(settings)
    version = version.removeprefix("v")
    registry.require_version(client, settings, version)
    move = registry.promote(client, settings, version, by="model promote")
    if not move.changed:
        done(f"v{version} is already the champion of {settings.model_name}; nothing changed.")
        return
    err.print("Serving picks up the new champion at its next registry poll.", highlight=False)
    was = f"v{move.previous}" if move.previous else "no champion"
    done(f"{settings.model_name} champion: {was} -> v{move.current}.")


@app.command()
def rollback() -> None:
    """Move the champion back to the previous champion."""
    from pipelines import registry

    settings = get_settings()
    move = registry.rollback(registry_client(settings), settings)
    err.print("Serving picks up the new champion at its next registry poll.", highlight=False)
    done(f"Rolled back {settings.model_name} champion: v{move.previous} -> v{move.current}.")

"""`mlops-lab postmortem ID` and `mlops-lab portfolio`: write up a solved incident, then gather
the finished write-ups into one page."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_lab.cli.output import done, err, out
from platform_core.errors import PlatformError
from platform_core.settings import get_settings


def postmortem(
    lab_id: Annotated[str, typer.Argument(help="The solved lab's number, e.g. 05.")],
) -> None:
    """Write a blameless postmortem of a solved lab, pre-filled with what the platform saw."""
    from mlops_lab.interview import postmortem as writer
    from mlops_lab.lab_engine.catalog import find
    from mlops_lab.lab_engine.engine import Engine

    settings = get_settings()
    lab = find(lab_id)
    engine = Engine(settings, console=err)
    if engine.round_lab() is not None:
        # Refused alike for every lab: which one has no solve to write up would name it.
        raise PlatformError(
            "An on-call round is running; postmortems wait until it is over.",
            hint="`mlops-lab oncall check` when it is fixed, or `mlops-lab oncall giveup`.",
        )
    progress = engine.store.get(lab.id)
    with err.status("Asking Prometheus which alerts fired…"):
        path = writer.write(settings, lab, progress)
    out.print(str(path), highlight=False)
    done(
        f"Postmortem of lab {lab.id} written. Replace every `{writer.PLACEHOLDER}` in it; "
        "`mlops-lab portfolio` then puts it on your page."
    )


def portfolio() -> None:
    """Compile every completed postmortem into one page, Markdown and HTML."""
    from mlops_lab.interview.portfolio import compile_portfolio

    result = compile_portfolio(get_settings())
    for path, why in result.skipped:
        err.print(f"[yellow]skipped[/] {path}: {why}", highlight=False)
    out.print(str(result.markdown), highlight=False)
    out.print(str(result.html), highlight=False)
    done(
        f"{len(result.included)} postmortems compiled into 'Incidents I debugged', "
        f"{len(result.skipped)} skipped as unfinished."
    )

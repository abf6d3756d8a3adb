"""`mlops-lab bench`: the benchmarks (`make bench`), from a source checkout.

The benchmarks live in the repository's ``benchmarks/`` folder, beside ``tests/`` whose helpers
they use to start throwaway platforms; neither is part of the installed package. So this command
runs ``python -m benchmarks`` in the checkout this package was installed from, and says so
plainly when there is none (an installed wheel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from platform_core.errors import PlatformError


def checkout_root() -> Path | None:
    """The source checkout holding ``benchmarks/``, when this package runs from one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks" / "__main__.py").is_file() else None


def bench(
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated sections: platform, train, serving, drift, rollback, rollout, "
            "loop."
        ),
    ] = None,
    skip: Annotated[str | None, typer.Option(help="Comma-separated sections to leave out.")] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Shorter measurements; the loop with test settings only."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Where the JSON and the plot go. Default: benchmarks/results."),
    ] = None,
) -> None:
    """Measure start-up, memory, training, serving, drift, rollback, a shadow rollout and the
    drift loop.

    Prints a table (each figure beside what it is compared with), writes JSON and a latency plot.
    The full run takes about 20 minutes on 2 cores; --quick about 10."""
    root = checkout_root()
    if root is None:
        raise PlatformError(
            "`mlops-lab bench` runs the benchmarks of a source checkout, and this mlops-lab is "
            "installed without one (the benchmarks are not part of the package).",
            hint="Clone the repository and run `make bench` (or `mlops-lab bench`) inside it.",
        )
    command = [sys.executable, "-m", "benchmarks"]
    for flag, value in (("--only", only), ("--skip", skip)):
        if value:
            command += [flag, value]
    if quick:
        command.append("--quick")
    if out is not None:
        command += ["--out", str(out.resolve())]
    code = subprocess.run(command, cwd=root, check=False).returncode
    if code:
        raise typer.Exit(code)

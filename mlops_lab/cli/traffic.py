"""`mlops-lab traffic`: realistic prediction requests, with true labels sent back as feedback."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.table import Table

from mlops_lab.cli.output import done, err
from platform_core.errors import PlatformError
from platform_core.settings import get_settings
from platform_core.waiting import TimedOut, poll

if TYPE_CHECKING:
    from mlops_lab.front_end.loadgen import LoadStats

# Distinct applications generated per run; longer runs cycle through them.
_MAX_DISTINCT_ROWS = 50_000
_READY_POLL_S = 1.0


def traffic(
    rps: Annotated[
        float, typer.Option("--rps", min=0.1, max=2000, help="Requests per second to send.")
    ] = 10.0,
    duration: Annotated[
        float, typer.Option("--duration", min=1, help="How long to send, in seconds.")
    ] = 60.0,
    scenario: Annotated[
        str,
        typer.Option(
            help="Population the applications come from: baseline or a drift scenario "
            "(an unknown name lists them)."
        ),
    ] = "baseline",
    feedback_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share of answered requests whose true label is sent back."
        ),
    ] = 0.2,
    seed: Annotated[
        int | None, typer.Option(help="Seed for the applications; random when omitted.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for serving to load a model before giving up."),
    ] = 60.0,
) -> None:
    """Send single-application prediction requests to the serving API at a steady rate."""
    # Imported here so other commands do not pay a second for pandas.
    from mlops_lab.front_end.loadgen import LoadStats, run_traffic
    from pipelines import data
    from serving.schema import records_from_frame

    if scenario not in data.SCENARIOS:
        raise PlatformError(str(data.UnknownScenario(scenario)))
    settings = get_settings()
    base_url = settings.url(settings.serving_port)
    wait_until_ready(base_url, wait)
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rows = min(_MAX_DISTINCT_ROWS, max(1, math.ceil(rps * duration)))
    frame = data.generate(rows, scenario, seed=seed)
    records = records_from_frame(frame, data.FEATURE_NAMES)
    labels = frame[data.TARGET].tolist()
    err.print(
        f"Sending {rps:g} req/s for {duration:g}s to {base_url} "
        f"(scenario {scenario}, seed {seed}, feedback for {feedback_rate:.0%})",
        highlight=False,
    )
    stats = LoadStats()
    run = run_traffic(base_url, records, labels, rps, duration, feedback_rate, stats, seed=seed)
    try:
        if err.is_terminal:
            with Live(console=err, refresh_per_second=4, get_renderable=lambda: _summary(stats)):
                asyncio.run(run)
        else:
            asyncio.run(run)
    except KeyboardInterrupt:
        stats.finished = stats.finished or time.monotonic()
        err.print("[yellow]Stopped early (Ctrl-C).[/]")
    if not err.is_terminal:  # a log or a pipe gets the summary once, not a redraw per refresh
        err.print(_summary(stats))
    _finish(stats, base_url)


def wait_until_ready(base_url: str, wait_s: float) -> None:
    """Right after `make train` serving is live but has not yet polled the new champion: wait
    for its readiness (GET /readyz answers 200) rather than failing at once."""
    from mlops_lab.front_end.loadgen import not_ready_reason

    reason = not_ready_reason(base_url)
    if reason is None:
        return
    message = f"Waiting for serving at {base_url} to be ready (up to {wait_s:g}s)"
    # A terminal gets a spinner; a log gets one line.
    if not err.is_terminal:
        err.print(f"{message}: {reason}", highlight=False)
    spinner = err.status(f"{message}: {reason}") if err.is_terminal else None

    def ready() -> bool:
        nonlocal reason
        reason = not_ready_reason(base_url)
        if spinner and reason:
            spinner.update(f"{message}: {reason}")
        return reason is None

    # An unreachable serving raises at once: waiting would not help.
    with spinner or contextlib.nullcontext():
        try:
            poll(ready, wait_s, every_s=_READY_POLL_S, tolerate=())
        except TimedOut:
            raise PlatformError(
                f"Serving at {base_url} is not ready after {wait_s:g}s: {reason}",
                hint="Train and promote a model first (`make train`); `make logs SERVICE=serving` "
                "shows what the service is waiting for. `--wait` waits longer.",
            ) from None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _summary(stats: LoadStats) -> Table:
    table = Table("Sent", "OK", "Errors", "Rate", "p50", "p99", "Labels sent", box=None)
    table.add_row(
        str(stats.sent),
        f"[green]{stats.ok}[/]",
        f"[red]{stats.failed}[/]" if stats.failed else "0",
        f"{stats.rate:.1f}/s",
        _ms(stats.percentile(50)),
        _ms(stats.percentile(99)),
        str(stats.labels_sent),
    )
    return table


def _finish(stats: LoadStats, base_url: str) -> None:
    if stats.failed:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in stats.errors.most_common())
        err.print(f"[red]Errors:[/] {kinds}. First: {stats.first_error}", highlight=False)
    if stats.labels_failed:
        err.print(f"[red]{stats.labels_failed} feedback labels were not accepted.[/]")
    if stats.sent and not stats.ok:
        raise PlatformError(
            f"None of the {stats.sent} requests to {base_url} succeeded.",
            hint="`make logs SERVICE=serving` shows why.",
        )
    done(
        f"{stats.ok}/{stats.sent} requests answered OK at {stats.rate:.1f}/s "
        f"(p50 {_ms(stats.percentile(50))}, p99 {_ms(stats.percentile(99))}); "
        f"{stats.labels_sent} labels sent as feedback."
    )

"""Lab 05: serving's configuration gets a value it cannot parse, so it crash-loops."""

from __future__ import annotations

import time

from mlops_lab.lab_engine.golden import served_version
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported
from mlops_lab.lab_engine.progress import LabProgress

SERVICE = "serving"
BROKEN = {"MLOPS_LAB_ALIAS_POLL_INTERVAL_S": "5s"}


def stable_after_s(ctx: LabContext) -> float:
    """How long serving must run without a restart to count as fixed."""
    return max(10.0, 3 * ctx.settings.alias_poll_interval_s)


def start(ctx: LabContext) -> dict:
    ctx.override(SERVICE, BROKEN, wait=False)
    ctx.say(
        '[bold]Lab 05.[/] Alert: TargetDown (job=serving). Loan front end: "every application '
        'fails since a few minutes ago: connection refused."'
    )
    return {}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    ready, why = ctx.serving_ready()
    champion = ctx.champion()
    served = served_version(ctx) if ready else None
    process = ctx.process(SERVICE)
    running = process.running
    up_for = time.time() - (process.started_at or time.time()) if running else 0.0
    needed = stable_after_s(ctx)
    firing = ctx.firing("TargetDown", job=SERVICE)
    return [
        Condition.of(
            "serving is ready",
            ready,
            "/readyz answers 200",
            f"serving is not ready: {why} (process {process.state})",
        ),
        Condition.of(
            "serving answers with the champion",
            champion is not None and served == str(champion.version),
            f"/predict answers with v{served}",
            "/predict does not answer" if served is None else f"/predict answers with v{served}",
        ),
        Condition.of(
            "serving stays up",
            running and up_for >= needed,
            f"running for {up_for:.0f}s without a restart",
            f"serving has run {up_for:.0f}s since its last start; {needed:.0f}s without a "
            "restart count as stable",
        ),
        Condition.of(
            "Prometheus scrapes serving again",
            not firing,
            "TargetDown is not firing for serving",
            "TargetDown still fires for serving (it resolves after a successful scrape)",
        ),
        cause_reported("05", progress.answers, *BROKEN),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    process = ctx.process(SERVICE)
    state = process.state
    log_tail = ctx.runtime.log_tail(SERVICE, 3)
    return [
        "Is the process there at all? `mlops-lab status` shows each process's state.",
        f"serving is {state}. Its log says why it exits: `mlops-lab logs serving`. Last lines: "
        + " | ".join(line.strip() for line in log_tail if line.strip())[-400:],
        "It exits while reading its configuration. Besides the platform's settings, a service "
        f"reads its own file: {ctx.settings.home / 'config' / (SERVICE + '.env')}.",
        "Fix the value (settings in seconds are plain numbers) or delete the file, then "
        "`mlops-lab restart serving` (or `mlops-lab up`, which starts what is stopped).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    ctx.clear_overrides()
    progress.answers[CAUSE] = f"serving's own configuration sets {next(iter(BROKEN))} to 5s"

"""Lab 05: serving's own configuration gets a value its settings refuse, so it crash-loops. The
variant says which setting, and what whoever changed it meant."""

from __future__ import annotations

import time

from mlops_lab.lab_engine.golden import served_version
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core.settings import ENV_PREFIX

SERVICE = "serving"
# What someone tuning serving wrote into its own configuration: each a value serving's settings
# (platform_core/settings.py) refuse when the process starts, none one the Kubernetes runtime
# sets itself. ``meant`` is what was intended, ``expects`` what the setting takes.
VARIANTS = (
    {
        "setting": "MLOPS_LAB_ALIAS_POLL_INTERVAL_S",
        "value": "5s",
        "meant": "five seconds",
        "expects": "a plain number of seconds",
    },
    {
        "setting": "MLOPS_LAB_MAX_BATCH_RECORDS",
        "value": "0",
        "meant": "no limit on the batch size",
        "expects": "a whole number of records, at least 1",
    },
    {
        "setting": "MLOPS_LAB_PREDICTION_LOG_QUEUE_SIZE",
        "value": "200k",
        "meant": "200,000 rows",
        "expects": "a plain whole number of rows",
    },
)


def stable_after_s(ctx: LabContext) -> float:
    """How long serving must run without a restart to count as fixed."""
    return max(10.0, 3 * ctx.settings.alias_poll_interval_s)


def start(ctx: LabContext, variant: dict) -> dict:
    ctx.override(SERVICE, {variant["setting"]: variant["value"]}, wait=False)
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
    # The setting's name, with or without the prefix (the log spells the variable, the settings
    # file the field).
    setting = variant_of(VARIANTS, progress.state)["setting"].removeprefix(ENV_PREFIX)
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
        cause_reported("05", progress.answers, setting),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    process = ctx.process(SERVICE)
    state = process.state
    log_tail = ctx.runtime.log_tail(SERVICE, 3)
    return [
        "Is the process there at all? `mlops-lab status` shows each process's state.",
        f"serving is {state}. Its log says why it exits: `mlops-lab logs serving`. Last lines: "
        + " | ".join(line.strip() for line in log_tail if line.strip())[-400:],
        "It exits while reading its configuration. Besides the platform's settings, a service "
        f"reads its own file: {ctx.settings.home / 'config' / (SERVICE + '.env')}.",
        f"Fix the value the log names (that setting takes {variant['expects']}) or delete the "
        "file, then `mlops-lab restart serving` (or `mlops-lab up`, which starts what is "
        "stopped).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    variant = variant_of(VARIANTS, progress.state)
    ctx.clear_overrides()
    progress.answers[CAUSE] = (
        f"serving's own configuration sets {variant['setting']} to {variant['value']}, where "
        f"the setting takes {variant['expects']}"
    )

"""What ``mlops-lab train --rollout MODE [--percent N]`` asks for: a rollout plan, checked.

Light on purpose (no MLflow, no Prefect): the CLI checks its options with it before seconds of
imports, and the ``train`` flow checks its parameters with it too (runs started from the Prefect
UI do not pass through the CLI).
"""

from __future__ import annotations

from typing import Literal

from platform_core.errors import PlatformError
from platform_core.rollout import CANARY, SHADOW, Plan

# How ``train --rollout`` tries a version that passed the gate, instead of promoting it.
RolloutMode = Literal["shadow", "canary"]
# The share a canary answers when ``train --rollout canary`` names none.
DEFAULT_CANARY_PERCENT = 10.0


def rollout_plan(mode: str | None, percent: float | None) -> Plan | None:
    """The plan ``train --rollout MODE [--percent N]`` asks for (None: promote as usual)."""
    if mode is None:
        if percent is not None:
            raise PlatformError(
                "--percent is the share of a canary rollout; pass --rollout canary too.",
                hint="e.g. mlops-lab train --rollout canary --percent 10",
            )
        return None
    if mode == SHADOW:
        if percent is not None:
            raise PlatformError(
                "--percent is the share of a canary; a shadow candidate answers no request.",
                hint="Use --rollout canary --percent N, or --rollout shadow alone.",
            )
        return Plan(SHADOW)
    if mode != CANARY:
        raise PlatformError(
            f"Unknown rollout mode {mode!r}.", hint="Use --rollout shadow or --rollout canary."
        )
    try:
        return Plan.canary(DEFAULT_CANARY_PERCENT if percent is None else percent)
    except ValueError as error:
        raise PlatformError(f"--percent {percent:g}: {error}.", hint="e.g. --percent 10") from None

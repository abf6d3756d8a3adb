"""Every local lab is solvable: start -> check fails with a reason -> the reference fix -> check
passes -> reset -> the golden state holds. Labs whose evidence matters also refuse a wiped fix."""

from __future__ import annotations

import pytest
from rich.console import Console

from mlops_lab.lab_engine import golden
from mlops_lab.lab_engine.catalog import all_labs, find
from mlops_lab.lab_engine.engine import Engine
from mlops_lab.lab_engine.kit import LabContext
from platform_core.settings import Settings
from tests.support import platform_environment, run_cli

LOCAL_LABS = [lab.id for lab in all_labs() if lab.runs_on("local")]
# Long enough for the slowest eventual state on two busy cores: a drift window refilling, an
# alert resolving, labelled answers accumulating after a rollback.
SOLVED_WITHIN_S = "240"


def _delete_version(key: str):
    def wipe(ctx: LabContext, progress) -> None:
        ctx.mlflow.delete_model_version(ctx.settings.model_name, progress.state[key])

    return wipe


def _empty_log_since_start(ctx: LabContext, progress) -> None:
    import datetime as dt

    import sqlalchemy as sa

    from platform_core.prediction_log import predictions

    since = dt.datetime.fromtimestamp(progress.started_at, dt.UTC)
    with ctx.log_engine().begin() as conn:
        conn.execute(sa.delete(predictions).where(predictions.c.created_at >= since))


def _empty_outcomes(ctx: LabContext, progress) -> None:
    # The front end stopped first: outcomes arriving after the wipe would race the check.
    ctx.stop_front_end()
    _empty_log_since_start(ctx, progress)


# Shortcuts that make an incident disappear instead of fixing it: after a real fix, each must
# turn the check red again, naming the evidence that is gone.
WIPES = {
    "02": (_empty_log_since_start, "the incident's requests are still in the prediction log"),
    "03": (_delete_version("broken"), "the broken release is still in the registry"),
    "04": (_delete_version("leaky"), "last night's model is still in the registry"),
    "07": (_empty_outcomes, "it beats the old champion on the new applicants' outcomes"),
}


def lab_cli(settings: Settings, *args: str):
    return run_cli(settings, "lab", *args, timeout=600)


def assert_golden(ctx: LabContext) -> None:
    failed = [c for c in golden.conditions(ctx) if not c.passed]
    assert not failed, "; ".join(f"{c.name}: {c.detail}" for c in failed)


@pytest.mark.parametrize("lab_id", LOCAL_LABS)
def test_lab_is_solvable_and_resets_to_golden(
    platform: Settings, ctx: LabContext, lab_id: str
) -> None:
    # What a learner runs goes through the CLI (start, check, reset); the steps only CI takes
    # (the early check, the reference fix, the wipes) run in this process, which saves a few
    # seconds of imports per step.
    lab = find(lab_id)
    engine = Engine(platform, console=Console(stderr=True, quiet=True))
    started = lab_cli(platform, "start", lab_id)
    assert started.returncode == 0, started.stderr
    try:
        with platform_environment(platform):
            early = engine.check(lab, wait_s=0)
            failing = [c for c in early.conditions if not c.passed]
            assert failing and all(c.detail for c in failing), early.conditions
            engine.solve(lab)

        checked = lab_cli(platform, "check", lab_id, "--wait", SOLVED_WITHIN_S)
        assert checked.returncode == 0, checked.stderr
        assert f"Lab {lab_id} solved" in checked.stderr
        assert "Root cause" in engine.debrief(lab)

        if lab_id in WIPES:
            wipe, evidence = WIPES[lab_id]
            wipe(ctx, engine.store.get(lab_id))
            with platform_environment(platform):
                wiped = engine.check(lab, wait_s=0)
            assert evidence in [c.name for c in wiped.conditions if not c.passed]
    finally:
        reset = lab_cli(platform, "reset", lab_id)
        assert reset.returncode == 0, reset.stderr
    assert_golden(ctx)

"""Every local lab is solvable: start -> check fails with a reason -> the reference fix -> check
passes -> reset -> the golden state holds. Labs whose evidence matters also refuse a wiped fix."""

from __future__ import annotations

import json

import pytest

from mlops_lab.core.settings import Settings
from mlops_lab.labs import golden
from mlops_lab.labs.catalog import all_labs
from mlops_lab.labs.kit import LabContext
from mlops_lab.labs.progress import ProgressStore
from tests.support import run_cli

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

    from mlops_lab.core.prediction_log import predictions

    since = dt.datetime.fromtimestamp(progress.started_at, dt.UTC)
    with ctx.log_engine().begin() as conn:
        conn.execute(sa.delete(predictions).where(predictions.c.created_at >= since))


# Shortcuts that make an incident disappear instead of fixing it: after a real fix, each must
# turn the check red again, naming the evidence that is gone.
WIPES = {
    "02": (_empty_log_since_start, "the incident's requests are still in the prediction log"),
    "03": (_delete_version("broken"), "the broken release is still in the registry"),
    "04": (_delete_version("leaky"), "last night's model is still in the registry"),
}


def lab_cli(settings: Settings, *args: str):
    return run_cli(settings, "lab", *args, timeout=600)


def assert_golden(ctx: LabContext) -> None:
    failed = [c for c in golden.conditions(ctx) if not c.passed]
    assert not failed, "; ".join(f"{c.name}: {c.detail}" for c in failed)


@pytest.mark.parametrize("lab_id", LOCAL_LABS)
def test_lab_is_solvable_and_resets_to_golden(
    lab_platform: Settings, ctx: LabContext, lab_id: str
) -> None:
    started = lab_cli(lab_platform, "start", lab_id)
    assert started.returncode == 0, started.stderr
    try:
        early = lab_cli(lab_platform, "check", lab_id, "--wait", "0", "--json")
        assert early.returncode == 1, early.stderr
        report = json.loads(early.stdout)
        failing = [c for c in report["conditions"] if not c["passed"]]
        assert failing and all(c["detail"] for c in failing), report

        solved = lab_cli(lab_platform, "solve", lab_id)
        assert solved.returncode == 0, solved.stderr
        checked = lab_cli(lab_platform, "check", lab_id, "--wait", SOLVED_WITHIN_S)
        assert checked.returncode == 0, checked.stderr
        assert f"Lab {lab_id} solved" in checked.stderr

        debrief = lab_cli(lab_platform, "debrief", lab_id)
        assert debrief.returncode == 0, debrief.stderr

        if lab_id in WIPES:
            wipe, evidence = WIPES[lab_id]
            wipe(ctx, ProgressStore(lab_platform.learner_home).get(lab_id))
            wiped = lab_cli(lab_platform, "check", lab_id, "--wait", "0", "--json")
            assert wiped.returncode == 1, wiped.stderr
            failed = [c["name"] for c in json.loads(wiped.stdout)["conditions"] if not c["passed"]]
            assert evidence in failed, failed
    finally:
        reset = lab_cli(lab_platform, "reset", lab_id)
        assert reset.returncode == 0, reset.stderr
    assert_golden(ctx)

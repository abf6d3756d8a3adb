"""An exam of two incidents on the labs' platform, from start to report: the first fixed as a
learner would (the lab's fix applied outside the exam's commands, which a learner's own commands
are), the second with the reference fix. The test peeks at the round file to know which lab is
paged, as CI would."""

from __future__ import annotations

import json

import pytest

from mlops_lab.interview.exam import EXAM_FILE
from mlops_lab.interview.oncall import ROUND_FILE, token
from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.lab_engine.progress import LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.labs.test_lab_cycles import SOLVED_WITHIN_S, assert_golden
from tests.labs.test_oncall import assert_hidden
from tests.support import platform_environment, run_cli

# Serving down (its SLO breached until the fix) and flat graphs (no SLO breach): both scorings.
POOL = ("05", "06")


def exam(settings: Settings, *args: str):
    return run_cli(settings, "exam", *args, timeout=600)


def paged_lab(settings: Settings) -> str:
    raw = json.loads((settings.learner_home / ROUND_FILE).read_text())
    return next(i for i in POOL if token(raw["salt"], i) == raw["round"])


@pytest.mark.xdist_group("labs-late")
def test_an_exam_of_two_incidents_runs_from_start_to_report(
    platform: Settings, ctx: LabContext
) -> None:
    store = ProgressStore(platform.learner_home)
    before = store.path.read_bytes() if store.path.exists() else None
    started = exam(platform, "start", "--count", "2", "--minutes", "30", "--pool", ",".join(POOL))
    try:
        assert started.returncode == 0, started.stderr
        first = paged_lab(platform)
        assert_hidden(find(first), started.stdout + started.stderr)
        assert "Incident 1 of 2" in " ".join(started.stderr.split())
        # Not yet: the check fails and the exam stays on the incident.
        early = exam(platform, "check", "--wait", "0")
        assert early.returncode == 1 and "left in the exam" in early.stderr, early.stderr

        # The first fixed as a learner would: its fix applied, the cause reported.
        lab = find(first)
        progress: LabProgress = store.get(first)
        with platform_environment(platform):
            lab.module.solve(ctx, progress)
        store.save(first, progress)
        moved_on = exam(platform, "check", "--wait", SOLVED_WITHIN_S)
        assert moved_on.returncode == 0, moved_on.stderr
        said = " ".join(moved_on.stderr.split())
        assert f"Fixed: it was lab {first}: {lab.title} (resolved)" in said
        assert "Incident 2 of 2" in said
        second = paged_lab(platform)
        assert second != first
        assert_hidden(find(second), moved_on.stdout)

        # The second with the reference fix: it scores nothing.
        assert exam(platform, "solve").returncode == 0
        ended = exam(platform, "check", "--wait", SOLVED_WITHIN_S)
        assert ended.returncode == 0, ended.stderr
        assert "Report:" in ended.stderr

        status = exam(platform, "status", "--json")
        document = json.loads(status.stdout)
        assert not document["running"] and document["max_score"] == 200
        one, two = document["incidents"]
        assert (one["lab"], one["outcome"]) == (first, "resolved")
        assert (two["lab"], two["outcome"]) == (second, "resolved with the reference fix")
        assert one["points"] >= 60 and two["points"] == 0
        assert document["score"] == one["points"]
        by_lab = {i["lab"]: i for i in document["incidents"]}
        # Serving down breached its SLO until the fix; flat graphs never did.
        assert by_lab["05"]["slo_breached"], by_lab["05"]
        mitigated, resolved = (by_lab["05"][f"seconds_to_{k}"] for k in ("mitigate", "resolve"))
        assert mitigated is not None and 0 < mitigated <= resolved, by_lab["05"]
        assert not by_lab["06"]["slo_breached"], by_lab["06"]
        report = platform.learner_home / document["report"]
        text = report.read_text()
        assert f"## 1. Lab {first}" in text and f"## 2. Lab {second}" in text
        assert "serving within its SLOs" in text
        assert report.with_suffix(".html").read_text().lstrip().startswith("<!doctype html>")
    finally:
        exam(platform, "giveup")  # refused, and harmless, once the exam is over
        for lab_id in POOL:
            run_cli(platform, "lab", "reset", lab_id)
        (platform.learner_home / EXAM_FILE).unlink(missing_ok=True)
        (platform.learner_home / ROUND_FILE).unlink(missing_ok=True)
        if before is None:
            store.path.unlink(missing_ok=True)
        else:
            store.path.write_bytes(before)
    assert_golden(ctx)

"""On call: a random unsolved incident, met only through its page, named once it is fixed or
given up. The tests peek at the round file to drive the reference fix, as CI would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_lab.interview.oncall import NOT_AN_INCIDENT, ROUND_FILE, token
from mlops_lab.lab_engine.catalog import Lab, all_labs, find
from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.lab_engine.progress import (
    IN_PROGRESS,
    NOT_STARTED,
    SOLVED,
    LabProgress,
    ProgressStore,
)
from platform_core.settings import Settings
from tests.labs.test_lab_cycles import SOLVED_WITHIN_S, assert_golden
from tests.support import run_cli

INCIDENTS = [lab.id for lab in all_labs() if lab.runs_on("local") and lab.id not in NOT_AN_INCIDENT]


def oncall(settings: Settings, *args: str):
    return run_cli(settings, "oncall", *args, timeout=600)


@contextmanager
def only_unsolved(settings: Settings, lab_id: str | None) -> Iterator[ProgressStore]:
    """Every other incident marked solved, so the random pick is ``lab_id`` (or nothing); the
    learner's progress as it was before, afterwards."""
    store = ProgressStore(settings.learner_home)
    before = store.path.read_bytes() if store.path.exists() else None
    for other in INCIDENTS:
        if other != lab_id:
            store.save(other, LabProgress(status=SOLVED, started_at=1.0, solved_at=2.0))
        else:
            # Whatever other tests on this platform did with it, it is unsolved for this round.
            store.save(other, LabProgress())
    try:
        yield store
    finally:
        if before is None:
            store.path.unlink(missing_ok=True)
        else:
            store.path.write_bytes(before)


def assert_hidden(lab: Lab, output: str) -> None:
    """Nothing that names the lab: its id as a lab, its folder, its title, its README's text."""
    text = " ".join(output.lower().split())
    assert f"lab {lab.id}" not in text and lab.name not in text and lab.title.lower() not in text
    objective = lab.readme.read_text().split("## Objective", 1)[1].split("##", 1)[0]
    for line in filter(None, (line.strip().lower() for line in objective.splitlines())):
        assert line not in text, f"README text in the output: {line!r}"


def round_file(settings: Settings):
    return settings.learner_home / ROUND_FILE


def test_oncall_hides_the_incident_until_the_check_passes(
    platform: Settings, ctx: LabContext
) -> None:
    lab = find("05")
    with only_unsolved(platform, lab.id) as store:
        started = oncall(platform, "start")
        try:
            assert started.returncode == 0, started.stderr
            # Paged only once the symptom the page names is there: the alert fires already.
            assert ctx.firing("TargetDown", job="serving")
            assert "Symptom visible after" in started.stderr, started.stderr
            assert "TargetDown (job=serving) firing" in " ".join(started.stderr.split())
            assert_hidden(lab, started.stdout + started.stderr)
            assert "TargetDown" in started.stdout
            assert "not yet visible" not in started.stdout
            assert f"{platform.prometheus_url}/alerts" in started.stdout
            raw = json.loads(round_file(platform).read_text())
            assert "lab" not in raw and raw["round"] == token(raw["salt"], lab.id)
            progress = store.get(lab.id)
            assert (progress.status, progress.mode) == (IN_PROGRESS, "oncall")

            again = oncall(platform, "start")
            assert again.returncode == 1
            assert "already running" in again.stderr
            hint = oncall(platform, "hint")
            status = oncall(platform, "status")
            early = oncall(platform, "check", "--wait", "0", "--json")
            other = run_cli(platform, "lab", "start", "02")
            for result in (again, hint, status, early, other):
                assert_hidden(lab, result.stdout + result.stderr)
            assert hint.returncode == 0 and "Hint 1/" in hint.stdout, hint.stderr
            assert "1 hints used" in status.stderr, status.stderr
            assert early.returncode == 1
            report = json.loads(early.stdout)
            assert not report["passed"] and "lab" not in report
            # Why a condition fails is a hint: not in the report unless asked for.
            assert all(c["detail"] is None for c in report["conditions"] if not c["passed"])
            assert other.returncode == 1 and "on-call round is running" in other.stderr
            # The lab listing does not give the round away either.
            listed = json.loads(run_cli(platform, "lab", "list", "--json").stdout)
            assert not [row for row in listed if row["status"] == "in progress"], listed

            # The reference fix, applied through the round: the round is then assisted.
            solve = oncall(platform, "solve")
            assert solve.returncode == 0, solve.stderr
            assert_hidden(lab, solve.stdout + solve.stderr)
            solved = oncall(platform, "check", "--wait", SOLVED_WITHIN_S)

            assert solved.returncode == 0, solved.stderr
            said = " ".join(solved.stderr.split())
            assert f"It was lab {lab.id}: {lab.title}" in said
            assert "closed by the reference fix" in said and "assisted" in said
            assert "Incident over" not in said
            assert f"mlops-lab postmortem {lab.id}" in solved.stderr
            assert not round_file(platform).exists()
            listed = run_cli(platform, "lab", "status").stdout
            assert re.search(rf"{lab.id} .*solved \(assisted\) .*on-call", listed), listed
        finally:
            if round_file(platform).exists():
                oncall(platform, "giveup")
            run_cli(platform, "lab", "reset", lab.id)
            round_file(platform).unlink(missing_ok=True)


def test_giveup_names_the_incident_and_restores_the_golden_state(
    platform: Settings, ctx: LabContext
) -> None:
    lab = find("06")
    with only_unsolved(platform, lab.id) as store:
        started = oncall(platform, "start")
        assert started.returncode == 0, started.stderr
        gave_up = oncall(platform, "giveup")
        if gave_up.returncode != 0:
            run_cli(platform, "lab", "reset", lab.id)
            round_file(platform).unlink(missing_ok=True)

        assert gave_up.returncode == 0, gave_up.stderr
        assert f"It was lab {lab.id}: {lab.title}" in " ".join(gave_up.stderr.split())
        assert not round_file(platform).exists()
        progress = store.get(lab.id)
        assert progress.status == NOT_STARTED
        assert "gave up on call" in [event["kind"] for event in progress.events]
        assert_golden(ctx)
        assert "No on-call round" in oncall(platform, "status").stderr


def test_start_refuses_when_every_incident_is_solved(unstarted_settings: Settings) -> None:
    with only_unsolved(unstarted_settings, None):
        result = oncall(unstarted_settings, "start")

    assert result.returncode == 1
    assert "solved every incident" in result.stderr
    assert "--include-solved" in result.stderr
    assert not round_file(unstarted_settings).exists()


def test_start_refuses_when_the_platform_is_not_running(unstarted_settings: Settings) -> None:
    result = oncall(unstarted_settings, "start")

    assert result.returncode == 1
    assert "not running" in result.stderr and "make up" in result.stderr
    assert not round_file(unstarted_settings).exists()
    assert ProgressStore(unstarted_settings.learner_home).in_progress() == []


def test_check_and_giveup_without_a_round_say_how_to_start_one(
    unstarted_settings: Settings,
) -> None:
    for command in ("check", "giveup", "hint"):
        result = oncall(unstarted_settings, command)
        assert result.returncode == 1, command
        assert "No on-call round" in result.stderr and "oncall start" in result.stderr

"""Postmortems pre-filled from what the platform saw, never overwritten, and the portfolio of the
finished ones; all of it in the learner folder, which `down` and `clean` leave alone."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lab.interview import postmortem
from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.lab_engine.progress import SOLVED, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.labs.test_lab_cycles import SOLVED_WITHIN_S
from tests.support import run_cli, wait_for

EVIDENCE = [{"name": "serving answers", "detail": "/predict answers with v1"}]


@pytest.fixture(scope="module")
def solved_05(platform: Settings, ctx: LabContext) -> Iterator[LabProgress]:
    """Lab 05 started, its alert fired, fixed and checked: a real incident to write up."""
    lab = "05"
    try:
        assert run_cli(platform, "lab", "start", lab, "--seed", "0").returncode == 0
        wait_for(lambda: ctx.firing("TargetDown", job="serving"), 120, what="TargetDown")
        assert run_cli(platform, "lab", "solve", lab).returncode == 0
        checked = run_cli(platform, "lab", "check", lab, "--wait", SOLVED_WITHIN_S)
        assert checked.returncode == 0, checked.stderr
        # Solved by the reference fix: assisted, and said so.
        assert "Lab 05 solved with the reference fix (assisted)" in " ".join(checked.stderr.split())
        yield ProgressStore(platform.learner_home).get(lab)
    finally:
        run_cli(platform, "lab", "reset", lab)
        shutil.rmtree(postmortem.folder(platform), ignore_errors=True)


def written(settings: Settings, lab_id: str) -> Path:
    """The postmortem of the lab's latest solve, written now if it is not yet."""
    result = run_cli(settings, "postmortem", lab_id)
    match = re.search(r"(/\S+\.md)", result.stdout + " ".join(result.stderr.split()))
    assert match, result.stderr
    return Path(match[1].rstrip("."))


def complete(path: Path, extra: str = "") -> None:
    text = path.read_text().replace(f"**{postmortem.PLACEHOLDER}:**", "Written:")
    path.write_text(text + extra)


def solved_progress(mode: str = "lab") -> LabProgress:
    return LabProgress(
        status=SOLVED,
        started_at=1_700_000_000.0,
        solved_at=1_700_000_600.0,
        seconds_to_solve=600.0,
        hints_used=2,
        attempts=3,
        mode=mode,
        state={"evidence": EVIDENCE},
    )


def test_postmortem_prefills_times_alert_and_evidence(
    platform: Settings, solved_05: LabProgress
) -> None:
    result = run_cli(platform, "postmortem", "05")

    assert result.returncode == 0, result.stderr
    text = Path(result.stdout.strip()).read_text()
    assert solved_05.solved_at is not None, solved_05
    started = postmortem.stamp(solved_05.require_started_at())
    solved = postmortem.stamp(solved_05.solved_at)
    assert f"| Incident started | {started} |" in text
    assert f"| Check passed | {solved} |" in text
    # Detected by the first alert that fired in the window: which one depends on what else the
    # shared platform went through (serving's error rate, a drift alert of an earlier lab that
    # re-fires). The page's own alert is in the timeline, between start and fix.
    assert re.search(r"\| Detected \| .* by \w+ \(.*\), \d+ s after the start \|", text), text
    fired = re.search(r"- (.*): alert \*\*TargetDown \(.*job=serving.*\*\* firing$", text, re.M)
    assert fired, text
    assert started <= fired[1] <= solved
    assert f"| Hints used | {solved_05.hints_used} |" in text
    assert f"| Check attempts | {solved_05.attempts} |" in text
    assert f"| Solved | {postmortem.ASSISTED} |" in text
    for item in solved_05.state["evidence"]:
        assert f"**{item['name']}**: {item['detail']}" in text
    for section in ("### Hypothesis", "### Evidence", "### Repair", "### Verification"):
        assert section in text
    assert "## Root cause" in text and "## Prevention" in text
    assert not postmortem.is_complete(text)


def test_postmortem_is_never_overwritten(platform: Settings, solved_05: LabProgress) -> None:
    path = written(platform, "05")
    complete(path, "\nMy own notes.\n")
    mine = path.read_text()

    again = run_cli(platform, "postmortem", "05")

    assert again.returncode == 1
    assert path.name in again.stderr
    assert "not overwritten" in again.stderr
    assert path.read_text() == mine


def test_postmortem_says_when_no_alert_fired(platform: Settings, tmp_path: Path) -> None:
    settings = platform.model_copy(update={"learner_home": tmp_path})
    # The window lies before this Prometheus existed: it holds no ALERTS at all.
    path = postmortem.write(settings, find("02"), solved_progress())

    assert "| Detected | no alert fired between the start and the fix |" in path.read_text()


def test_an_alert_firing_before_the_start_is_not_what_detected_it() -> None:
    progress = solved_progress()
    start = progress.started_at or 0.0
    leftover = postmortem.FiredAlert("ServingErrorRateHigh", start, {"job": "serving"}, True)
    new = postmortem.FiredAlert("TargetDown", start + 30, {"job": "serving"})

    text = postmortem.render(find("05"), progress, [leftover, new])

    assert "| Detected | " + postmortem.stamp(start + 30) + " by TargetDown" in text
    assert "ServingErrorRateHigh (job=serving)** already firing" in text


def test_postmortem_refuses_before_a_solve(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "postmortem", "02")

    assert result.returncode == 1
    assert "has not been solved" in result.stderr
    assert "lab check 02" in result.stderr
    assert not postmortem.folder(unstarted_settings).exists()


def test_portfolio_renders_only_completed_postmortems(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save("03", solved_progress(mode="oncall"))
    store.save("05", solved_progress())
    finished, unfinished = written(unstarted_settings, "03"), written(unstarted_settings, "05")
    complete(finished, "\nThe release notes said `<script>` was fine.\n")

    result = run_cli(unstarted_settings, "portfolio")

    assert result.returncode == 0, result.stderr
    assert f"skipped {unfinished}" in " ".join(result.stderr.split())
    markdown, html = (Path(line) for line in result.stdout.split())
    page = markdown.read_text()
    assert page.startswith("# Incidents I debugged")
    assert f"## Postmortem: {find('03').title}" in page
    assert find("05").title not in page and postmortem.PLACEHOLDER not in page
    rendered = html.read_text()
    assert "<title>Incidents I debugged</title>" in rendered and "<style>" in rendered
    assert "<table>" in rendered and "&lt;script&gt;" in rendered
    assert "<script>" not in rendered


def test_portfolio_refuses_without_a_completed_postmortem(unstarted_settings: Settings) -> None:
    ProgressStore(unstarted_settings.learner_home).save("05", solved_progress())
    written(unstarted_settings, "05")

    result = run_cli(unstarted_settings, "portfolio")

    assert result.returncode == 1
    assert "No completed postmortem" in result.stderr
    assert "placeholders left" in result.stderr


def test_learner_work_survives_down_and_clean(unstarted_settings: Settings) -> None:
    ProgressStore(unstarted_settings.learner_home).save("03", solved_progress(mode="oncall"))
    path = written(unstarted_settings, "03")
    complete(path)
    assert run_cli(unstarted_settings, "portfolio").returncode == 0
    unstarted_settings.paths.ensure()

    assert run_cli(unstarted_settings, "down").returncode == 0
    assert run_cli(unstarted_settings, "clean", "--yes").returncode == 0
    status = run_cli(unstarted_settings, "lab", "status")
    portfolio = run_cli(unstarted_settings, "portfolio")

    assert not unstarted_settings.home.exists()
    assert path.exists() and postmortem.is_complete(path.read_text())
    assert re.search(r"03 .*solved .*on-call", status.stdout), status.stdout
    assert portfolio.returncode == 0, portfolio.stderr
    assert find("03").title in Path(portfolio.stdout.split()[0]).read_text()


def test_an_assisted_solve_is_marked_even_after_its_postmortem_is_edited(
    unstarted_settings: Settings,
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    assisted = solved_progress()
    assisted.assisted = True
    assisted.assisted_solves = [assisted.solved_at or 0.0]
    store.save("03", assisted)
    store.save("05", solved_progress())
    mine, helped = written(unstarted_settings, "05"), written(unstarted_settings, "03")
    assert "| Solved | unaided |" in mine.read_text()
    assert f"| Solved | {postmortem.ASSISTED} |" in helped.read_text()
    for path in (mine, helped):
        complete(path)
    # The learner edits the row away: the portfolio still knows, from the progress store.
    helped.write_text(helped.read_text().replace(f"| Solved | {postmortem.ASSISTED} |\n", ""))

    result = run_cli(unstarted_settings, "portfolio")

    assert result.returncode == 0, result.stderr
    page = Path(result.stdout.split()[0]).read_text()
    assert "2 incidents (1 solved with the reference fix, marked assisted)" in page
    sections = page.split("## Postmortem: ")[1:]
    marked = {section.split("\n", 1)[0]: "**Assisted**" in section for section in sections}
    assert marked == {find("03").title: True, find("05").title: False}


def test_the_timeline_counts_a_reason_shown_and_the_reference_fix() -> None:
    progress = solved_progress()
    start = progress.started_at or 0.0
    progress.events = [
        {"at": start + 10, "kind": "hint", "tier": "why", "conditions": ["serving is ready"]},
        {"at": start + 20, "kind": "hint", "tier": 1},
        {"at": start + 30, "kind": "reference fix applied"},
    ]

    text = postmortem.render(find("05"), progress, [])

    assert "why the check failed shown (a hint): serving is ready" in text
    assert "hint 1 taken" in text
    assert "the reference fix was applied: the solve is assisted" in text

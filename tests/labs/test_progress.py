"""The progress file: an on-call round's lab is not written in clear, files of earlier releases
still load, and `lab status` says when a solve was assisted."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict

from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.support import run_cli


def test_the_lab_of_an_on_call_round_is_not_written_in_clear(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save("03", LabProgress(status=SOLVED, started_at=1.0, solved_at=2.0))
    lab = find("06")
    state = {"wrong_port": 9999}
    store.save("06", LabProgress(status=IN_PROGRESS, mode="oncall", started_at=3.0, state=state))

    text = store.path.read_text()

    assert set(json.loads(text)["labs"]) == {"03"}
    for clear in ('"06"', lab.slug, "wrong_port"):
        assert clear not in text
    assert store.get("06").state == state
    assert store.in_progress() == ["06"]
    # Once the round is over, the entry is an ordinary one again.
    progress = store.get("06")
    progress.status = SOLVED
    store.save("06", progress)
    assert set(json.loads(store.path.read_text())["labs"]) == {"03", "06"}


def test_a_progress_file_of_an_earlier_release_loads(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.path.parent.mkdir(parents=True)
    # Before reasons were counted apart from hint tiers: each hint used was a tier.
    old = {"status": SOLVED, "hints_used": 3, "attempts": 2, "retired_field": 1}
    store.path.write_text(json.dumps({"labs": {"02": old}}))

    progress = store.get("02")

    assert (progress.hints_used, progress.hint_tier, progress.assisted) == (3, 3, False)


def test_status_marks_an_assisted_solve(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save(
        "05",
        LabProgress(
            status=SOLVED, started_at=1.0, solved_at=61.0, seconds_to_solve=60.0, assisted=True
        ),
    )
    store.save("06", LabProgress(status=SOLVED, started_at=1.0, solved_at=61.0, solves=1))

    status = run_cli(unstarted_settings, "lab", "status").stdout

    assert re.search(r"05 .*solved \(assisted\)", status), status
    assert re.search(r"06 .*solved ", status) and not re.search(r"06 .*assisted", status)


def test_a_lab_in_an_on_call_round_is_listed_as_it_was_before(
    unstarted_settings: Settings,
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    before = LabProgress(
        status=SOLVED, started_at=1.0, solved_at=301.0, hints_used=2, attempts=4, solves=1
    )
    before.seconds_to_solve = 300.0
    store.save("03", before)
    shown_before = run_cli(unstarted_settings, "lab", "status").stdout
    listed_before = run_cli(unstarted_settings, "lab", "list", "--json").stdout
    # What `oncall start` records: the round's own attempt, with what listings showed before.
    store.save(
        "03",
        LabProgress(
            status=IN_PROGRESS,
            mode="oncall",
            started_at=time.time(),
            solves=1,
            seconds_to_solve=300.0,
            hints_used=1,
            before_round=asdict(before),
        ),
    )

    assert run_cli(unstarted_settings, "lab", "status").stdout == shown_before
    assert run_cli(unstarted_settings, "lab", "list", "--json").stdout == listed_before

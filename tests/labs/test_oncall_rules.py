"""The on-call round's rules that need no running platform: while a round runs no command tells
which lab it is, the round file does not name it, and a page whose symptom never showed says so.
A round is set up as `oncall start` leaves it: the lab's progress in progress, in on-call mode."""

from __future__ import annotations

import json
import time

import pytest

from mlops_lab.interview.oncall import (
    ROUND_FILE,
    Oncall,
    Symptom,
    await_symptom,
    page_alert,
    token,
)
from mlops_lab.lab_engine.catalog import all_labs, find
from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.support import run_cli

ROUND_LAB = "05"


@pytest.fixture
def round_running(unstarted_settings: Settings) -> Settings:
    ProgressStore(unstarted_settings.learner_home).save(
        ROUND_LAB, LabProgress(status=IN_PROGRESS, mode="oncall", started_at=time.time())
    )
    return unstarted_settings


def errors(result) -> str:
    return " ".join(line for line in result.stderr.splitlines() if "Error" in line or "→" in line)


@pytest.mark.parametrize(
    "command",
    [
        ("start",),
        ("check", "--wait", "0"),
        ("hint",),
        ("solve",),
        ("reset",),
        ("answer", "version=1"),
        ("debrief",),
    ],
    ids=lambda command: command[0],
)
def test_lab_commands_answer_alike_for_every_lab_during_a_round(
    round_running: Settings, command: tuple[str, ...]
) -> None:
    verb, *options = command
    answers = {
        lab_id: run_cli(round_running, "lab", verb, lab_id, *options)
        for lab_id in (ROUND_LAB, "03")
    }

    assert answers[ROUND_LAB].returncode == answers["03"].returncode == 1
    assert answers[ROUND_LAB].stderr.replace(ROUND_LAB, "NN") == answers["03"].stderr.replace(
        "03", "NN"
    )
    assert ROUND_LAB not in errors(answers["03"]) and ROUND_LAB not in answers["03"].stderr
    if verb != "debrief":
        assert "on-call round is running" in answers[ROUND_LAB].stderr
        assert "oncall giveup" in errors(answers[ROUND_LAB])


def test_postmortems_wait_for_the_round_to_end(round_running: Settings) -> None:
    answers = [run_cli(round_running, "postmortem", lab_id) for lab_id in (ROUND_LAB, "03")]

    assert [a.returncode for a in answers] == [1, 1]
    assert answers[0].stderr == answers[1].stderr
    assert "on-call round is running" in answers[0].stderr


def test_the_round_file_does_not_name_the_lab(round_running: Settings) -> None:
    lab = find(ROUND_LAB)

    status = run_cli(round_running, "oncall", "status")

    assert status.returncode == 0, status.stderr
    assert "Lab 05" not in status.stderr and lab.title not in status.stdout
    text = (round_running.learner_home / ROUND_FILE).read_text()
    raw = json.loads(text)
    assert "lab" not in raw and f'"{ROUND_LAB}"' not in text
    assert lab.name not in text and lab.title not in text
    assert raw["round"] == token(raw["salt"], ROUND_LAB)
    round_ = Oncall(round_running).current()
    assert round_ is not None and round_.lab.id == ROUND_LAB


def test_a_round_file_of_an_earlier_release_is_read_and_rewritten(
    round_running: Settings,
) -> None:
    path = round_running.learner_home / ROUND_FILE
    path.write_text(json.dumps({"lab": ROUND_LAB, "started_at": time.time()}))

    round_ = Oncall(round_running).current()

    assert round_ is not None and round_.lab.id == ROUND_LAB
    # current() reads it; the next write (a symptom, a status) replaces it without the id.
    Oncall(round_running).await_symptom(round_, bound_s=0)
    assert "lab" not in json.loads(path.read_text())


def test_a_page_whose_symptom_never_showed_says_so(round_running: Settings) -> None:
    salt = "0123456789abcdef"
    (round_running.learner_home / ROUND_FILE).write_text(
        json.dumps(
            {
                "round": token(salt, ROUND_LAB),
                "salt": salt,
                "started_at": time.time(),
                "symptom": {"what": "TargetDown (job=serving) firing", "visible": False},
            }
        )
    )

    status = run_cli(round_running, "oncall", "status")

    assert status.returncode == 0, status.stderr
    assert "symptom not yet visible" in status.stdout
    assert "TargetDown (job=serving) firing" in " ".join(status.stdout.split())


def test_waiting_for_a_symptom_is_bounded() -> None:
    started = time.monotonic()
    never = await_symptom("an alert", lambda: False, bound_s=0.3, every_s=0.1)

    assert never == Symptom("an alert", False, never.seconds)
    assert 0.3 <= never.seconds < 2 and time.monotonic() - started < 2


def test_a_symptom_probe_that_cannot_answer_yet_is_asked_again() -> None:
    answers = iter([PlatformError("Prometheus is busy"), False, True])

    def observed() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    seen = await_symptom("an alert", observed, bound_s=10, every_s=0.01)

    assert seen.visible and seen.seconds < 5


def test_the_alert_a_page_names() -> None:
    assert page_alert({"alert": "TargetDown (job=serving, severity: critical)"}) == (
        "TargetDown",
        {"job": "serving"},
    )
    assert page_alert({"alert": "FeatureDriftDetected (severity: info)"}) == (
        "FeatureDriftDetected",
        {},
    )
    assert page_alert({"alert": "(no alert: a business complaint)"}) is None
    # Every page either names an alert or says it has none.
    for lab in all_labs():
        named = page_alert(lab.page)
        assert named is not None or lab.page["alert"].startswith("("), lab.page["alert"]


def test_a_round_remembers_its_symptom(round_running: Settings) -> None:
    oncall = Oncall(round_running)
    round_ = oncall.current()
    assert round_ is not None
    # No Prometheus to ask here: the symptom is the incident's own check failing, and with
    # nothing running it does at once.
    seen = oncall.await_symptom(round_, bound_s=5)

    assert seen.symptom is not None and seen.symptom.visible
    assert seen.symptom.what == "the incident's own check failing"
    assert seen.paged_at is not None and seen.paged_at >= round_.started_at
    assert oncall.current() == seen
    # The on-call clock runs from the page, not from the start of the incident.
    assert 0 <= seen.elapsed_s < time.time() - round_.started_at

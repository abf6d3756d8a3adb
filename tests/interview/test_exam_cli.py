"""`mlops-lab exam` without a platform: what it says with no exam, and the on-call commands
refusing while one runs (its incidents are on-call rounds: moving one on there would leave the
exam behind)."""

from __future__ import annotations

import time

from mlops_lab.interview.exam import EXAM_FILE, ExamState
from platform_core import state_file
from platform_core.settings import Settings
from tests.support import run_cli


def _said(result) -> str:
    return " ".join(result.stderr.split())


def test_without_an_exam_each_command_says_how_to_start_one(unstarted_settings: Settings) -> None:
    status = run_cli(unstarted_settings, "exam", "status")
    assert status.returncode == 0 and "No exam yet" in _said(status)
    for command in ("check", "hint", "giveup"):
        result = run_cli(unstarted_settings, "exam", command)
        assert result.returncode == 1, command
        assert "No exam is running" in _said(result) and "exam start" in _said(result)


def test_on_call_commands_refuse_while_an_exam_runs(unstarted_settings: Settings) -> None:
    now = time.time()
    path = unstarted_settings.learner_home / EXAM_FILE
    state_file.write_json(path, ExamState(now, now + 600, 2, None).to_json())
    try:
        for command in ("status", "check", "hint", "giveup"):
            result = run_cli(unstarted_settings, "oncall", command)
            assert result.returncode == 1, command
            assert "An exam is running" in _said(result), command
        shown = run_cli(unstarted_settings, "exam", "status", "--json")
        assert shown.returncode == 0, shown.stderr
    finally:
        path.unlink(missing_ok=True)

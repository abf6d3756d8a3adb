"""`lab check` says OK or NO per condition; why a condition fails is a hint, shown only when
asked (`--why`) and counted like one. Run against a platform that is not started: the check then
fails on its first condition ("platform answers"), whose detail says what did not answer."""

from __future__ import annotations

import json
import time

from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
from platform_core.settings import Settings
from tests.support import run_cli


def started_05(settings: Settings) -> ProgressStore:
    store = ProgressStore(settings.learner_home)
    store.save("05", LabProgress(status=IN_PROGRESS, started_at=time.time()))
    return store


def test_check_names_each_condition_without_why_it_fails(unstarted_settings: Settings) -> None:
    store = started_05(unstarted_settings)

    shown = run_cli(unstarted_settings, "lab", "check", "05", "--wait", "0")
    as_json = run_cli(unstarted_settings, "lab", "check", "05", "--wait", "0", "--json")

    assert shown.returncode == 1
    assert "NO platform answers\n" in shown.stderr, shown.stderr
    assert "not reachable" not in shown.stderr
    assert "lab check 05 --why" in " ".join(shown.stderr.split())
    conditions = json.loads(as_json.stdout)["conditions"]
    assert conditions == [{"name": "platform answers", "passed": False, "detail": None}]
    assert store.get("05").hints_used == 0


def test_why_shows_the_reason_and_counts_as_a_hint(unstarted_settings: Settings) -> None:
    store = started_05(unstarted_settings)

    why = run_cli(unstarted_settings, "lab", "check", "05", "--wait", "0", "--why", "--json")

    assert why.returncode == 1
    assert "NO platform answers: MLflow is not reachable" in " ".join(why.stderr.split())
    [condition] = json.loads(why.stdout)["conditions"]
    assert condition["detail"] and "MLflow is not reachable" in condition["detail"]
    progress = store.get("05")
    assert progress.hints_used == 1
    # The next hint tier is still the first: a reason is counted, not a tier taken.
    assert progress.hint_tier == 0
    assert [e for e in progress.events if e["kind"] == "hint"][-1]["tier"] == "why"
    assert "1 hints used" in why.stderr


def test_make_check_passes_why_on_when_asked() -> None:
    import subprocess

    from platform_core.settings import REPO_ROOT

    def planned(*args: str) -> list[str]:
        # Under `make test` this make is a nested one: it would also say where it is.
        made = subprocess.run(
            ["make", "-n", "--no-print-directory", "check", "N=05", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        [command] = [line for line in made.stdout.splitlines() if " lab check " in line]
        return command.split()

    assert planned("WHY=1")[-3:] == ["check", "05", "--why"]
    assert "--why" not in planned()

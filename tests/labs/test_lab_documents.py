"""Every lab folder follows the contract: manifest, symptoms-only README, a debrief kept apart
with root cause, detection, prevention and at least three interview questions with answers."""

from __future__ import annotations

import re

import pytest

from mlops_lab.lab_engine.catalog import LABS_DIR, all_labs

LABS = all_labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_folder_has_every_part(lab) -> None:
    for part in ("lab.toml", "README.md", "debrief.md", "lab.py"):
        assert (lab.folder / part).is_file(), f"{lab.name} lacks {part}"
    for function in ("start", "check", "hints", "solve"):
        assert callable(getattr(lab.module, function, None)), f"{lab.name}: no {function}()"
    assert {"alert", "summary", "look", "complaint"} <= set(lab.page)


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_readme_tells_the_incident_the_objective_and_how_to_start(lab) -> None:
    readme = lab.readme.read_text()
    for heading in ("## Objective", "## Start and check"):
        assert heading in readme, f"{lab.name}: README lacks {heading}"
    assert f"make lab N={lab.id}" in readme
    # The answer lives in the debrief, never in the brief: each manifest names what would give
    # its answer away.
    assert "root cause" not in readme.lower()
    assert lab.spoilers, f"{lab.name}: lab.toml names no spoilers to keep out of the README"
    for spoiler in lab.spoilers:
        assert spoiler.lower() not in readme.lower(), f"{lab.name}: README says {spoiler!r}"


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_debrief_has_cause_detection_prevention_and_answered_questions(lab) -> None:
    debrief = lab.debrief.read_text()
    for heading in ("## Root cause", "## Detection", "## Prevention", "## Interview questions"):
        assert heading in debrief, f"{lab.name}: debrief lacks {heading}"
    questions = debrief.split("## Interview questions", 1)[1]
    items = re.split(r"\n\d+\. ", "\n" + questions.strip())[1:]
    assert len(items) >= 3, f"{lab.name}: {len(items)} interview questions"
    for item in items:
        question, _, answer = item.partition("\n")
        assert question.startswith("**") and question.rstrip().endswith("**"), question
        assert len(answer.split()) >= 40, f"{lab.name}: a short model answer to {question}"


def test_the_index_lists_every_lab() -> None:
    index = (LABS_DIR / "README.md").read_text()
    for lab in LABS:
        assert f"[{lab.id}]" in index or f"{lab.name}" in index, f"index lacks {lab.name}"

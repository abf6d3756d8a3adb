"""Every lab folder follows the contract: manifest, symptoms-only README, a debrief kept apart
with root cause, detection, prevention and at least three interview questions with answers, and
no declared spoiler in anything a learner reads before the solve."""

from __future__ import annotations

import ast
import re

import pytest

from mlops_lab.cli import lab as lab_cli
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
    # The answer lives in the debrief, never in the brief.
    assert "root cause" not in readme.lower()


def _index_row(lab) -> str:
    index = (LABS_DIR / "README.md").read_text()
    rows = [line for line in index.splitlines() if line.startswith(f"| [{lab.id}](")]
    assert len(rows) == 1, f"labs/README.md has {len(rows)} index rows for lab {lab.id}"
    return rows[0]


def _index_prose() -> str:
    """labs/README.md without its index rows: what every learner reads about every lab."""
    index = (LABS_DIR / "README.md").read_text()
    return "\n".join(line for line in index.splitlines() if not line.startswith("| ["))


def _start_announcement(lab) -> str:
    """The strings the lab's own ``start()`` hands to ``ctx.say``: what `lab start` prints
    between the engine's lines (read from the source, so no platform is needed)."""
    tree = ast.parse((lab.folder / "lab.py").read_text())
    start = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "start"
    )
    said = [
        node
        for node in ast.walk(start)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "say"
    ]
    return " ".join(
        part.value
        for call in said
        for part in ast.walk(call)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    )


def _condition_names(lab) -> str:
    """The names the lab's ``check()`` gives its conditions: `lab check` prints each with OK or
    NO (read from the source: the first argument of every ``Condition``/``Condition.of``, and
    of a shared condition's helper by its name in ``kit``)."""
    tree = ast.parse((lab.folder / "lab.py").read_text())
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func, "value", None)
        is_condition = called == "Condition" or (
            called == "of" and isinstance(owner, ast.Name) and owner.id == "Condition"
        )
        first = node.args[0]
        if is_condition and isinstance(first, ast.Constant | ast.JoinedStr):
            names.append(ast.unparse(first))
    return "\n".join(names)


def seen_before_the_solve(lab) -> dict[str, str]:
    """Everything a learner reads about a lab before solving it, by where it is shown."""
    start_output = [lab_cli.starting(lab), _start_announcement(lab), *lab_cli.started(lab, 0.0)]
    return {
        "README.md": lab.readme.read_text(),
        "lab.toml title": lab.title,
        "lab.toml teaches": lab.teaches,
        "folder name": lab.name,
        "labs/README.md index row": _index_row(lab),
        "labs/README.md (outside the index)": _index_prose(),
        "`lab start` output": "\n".join(start_output),
        "`lab check` condition names": _condition_names(lab),
        **{f"on-call page ({key})": value for key, value in lab.page.items()},
    }


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_nothing_shown_before_the_solve_says_a_declared_spoiler(lab) -> None:
    # Each manifest names what would give its answer away; none of it may appear anywhere a
    # learner looks before solving: brief, title, what it teaches, folder, index, start, page.
    assert lab.spoilers, f"{lab.name}: lab.toml declares no spoilers"
    hits = [
        f"{where} says {spoiler!r}"
        for where, text in seen_before_the_solve(lab).items()
        for spoiler in lab.spoilers
        if spoiler.lower() in text.lower()
    ]
    assert not hits, f"{lab.name}: " + "; ".join(hits)


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

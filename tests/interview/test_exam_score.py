"""The exam's arithmetic and its report, on made-up incidents: no platform."""

from __future__ import annotations

import json

from mlops_lab.interview.exam import (
    ASSISTED,
    GAVE_UP,
    RESOLVED,
    ExamState,
    Incident,
    mitigation,
    points,
    report_markdown,
)


def _incident(outcome: str = RESOLVED, **changes) -> Incident:
    fields = {
        "lab": "05",
        "title": "Serving is down",
        "outcome": outcome,
        "paged_at": 1000.0,
        "ended_at": 1300.0,
        "hints": 0,
        "seed": 7,
        "variant": 1,
        "slo_breached": True,
        "mitigated_at": 1120.0,
    }
    return Incident(**{**fields, **changes})


def test_a_fast_unaided_fix_scores_nearly_everything_and_hints_cost_points() -> None:
    at_once = _incident(mitigated_at=1000.0, ended_at=1000.0)
    assert points(at_once, budget_s=900) == 100
    slower = _incident()  # mitigated after 120 s, resolved after 300 s of a 900 s budget
    assert points(slower, budget_s=900) == round(60 + 20 * (1 - 120 / 900) + 20 * (1 - 300 / 900))
    assert points(_incident(hints=2), 900) == points(slower, 900) - 10
    assert points(_incident(hints=20), 900) == points(slower, 900) - 30


def test_the_reference_fix_giving_up_or_the_clock_score_nothing() -> None:
    for outcome in (ASSISTED, GAVE_UP, "out of time"):
        assert points(_incident(outcome), budget_s=900) == 0


def test_an_incident_without_an_slo_breach_is_mitigated_when_resolved() -> None:
    quiet = _incident(slo_breached=False, mitigated_at=None)
    assert quiet.mitigate_s == quiet.resolve_s == 300.0
    still_broken = _incident(slo_breached=True, mitigated_at=None, outcome=GAVE_UP)
    assert still_broken.mitigate_s is None and still_broken.resolve_s is None


def test_mitigation_is_the_start_of_the_last_unbroken_run_within_the_slos() -> None:
    assert mitigation([(0, True), (5, True)]) == (False, None)
    assert mitigation([(0, False), (5, False), (10, True), (15, True)]) == (True, 10)
    # A relapse: mitigated only from the last recovery on.
    assert mitigation([(0, False), (5, True), (10, False), (15, True), (20, True)]) == (True, 15)
    assert mitigation([(0, True), (5, False)]) == (True, None)


def test_the_state_reads_back_and_the_report_has_a_row_and_a_timeline_per_incident() -> None:
    first = _incident(
        events=[
            {"at": 1010.0, "kind": "hint", "tier": 1, "after_s": 10.0},
            {"at": 1290.0, "kind": "checked", "passed": True, "failed": [], "after_s": 290.0},
        ]
    )
    second = _incident(
        ASSISTED, lab="06", title="Flat graphs", slo_breached=False, mitigated_at=None
    )
    state = ExamState(0.0, 1800.0, 2, None, [first, second], ended_at=2000.0)
    again = ExamState.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert state.score == points(first, 900) and state.max_score == 200

    text = report_markdown(state)
    assert f": {state.score} / 200" in text.splitlines()[0]
    rows = [
        line for line in text.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")
    ]
    assert "Lab 05: Serving is down | resolved | 2m 00s | 5m 00s | 0 |" in rows[0]
    assert "Lab 06: Flat graphs | resolved with the reference fix |" in rows[1]
    assert "(no SLO breach)" in rows[1] and rows[1].endswith("| 0 |")
    assert "## 1. Lab 05: Serving is down" in text and "## 2. Lab 06: Flat graphs" in text
    assert "`mlops-lab lab start 05 --seed 7`" in text
    for line in (
        "| 0m 10s | hint (1) |",
        "| 2m 00s | serving within its SLOs |",
        "| 5m 00s | resolved |",
    ):
        assert line in text

"""One incident, one retrain: the receiver's decisions, with a controllable clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.incidents import Action, AlertInstance, IncidentBook

DRIFT = {AlertInstance("fp-drift", "2025-01-01T10:00:00Z")}
PERFORMANCE = {AlertInstance("fp-auc", "2025-01-01T10:05:00Z")}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(tmp_path: Path, clock: Clock) -> IncidentBook:
    return IncidentBook(tmp_path / "incidents.json", cooldown_s=900, clock=clock)


def _start(book: IncidentBook, group: str, instances: set[AlertInstance], run: str) -> None:
    decision = book.on_firing(group, ("DataDriftDetected",), instances)
    assert decision.action == Action.START
    book.record_start(decision, instances, run)


def test_a_new_incident_starts_a_retrain(book: IncidentBook) -> None:
    decision = book.on_firing("{}:{alertname=DataDriftDetected}", ("DataDriftDetected",), DRIFT)
    assert decision.action == Action.START


def test_a_repeated_notification_is_a_duplicate(book: IncidentBook, clock: Clock) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 4 * 3600  # Alertmanager's repeat_interval
    decision = book.on_firing("group-a", ("DataDriftDetected",), DRIFT)
    assert decision.action == Action.DUPLICATE
    assert decision.flow_run_id == "run-1"
    assert "run-1" in decision.reason


def test_the_same_alerts_under_another_group_are_a_duplicate(book: IncidentBook) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    decision = book.on_firing("group-b", ("DataDriftDetected",), DRIFT)
    assert decision.action == Action.DUPLICATE


def test_another_incident_within_the_cooldown_is_skipped(book: IncidentBook, clock: Clock) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 60
    decision = book.on_firing("group-b", ("ModelPerformanceDegraded",), PERFORMANCE)
    assert decision.action == Action.COOLDOWN
    assert "cooldown of 900s" in decision.reason


def test_another_incident_after_the_cooldown_starts_again(book: IncidentBook, clock: Clock) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 901
    decision = book.on_firing("group-b", ("ModelPerformanceDegraded",), PERFORMANCE)
    assert decision.action == Action.START


def test_a_resolved_incident_that_fires_again_is_a_new_incident(
    book: IncidentBook, clock: Clock
) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    resolved = book.on_resolved("group-a", ("DataDriftDetected",))
    assert resolved.action == Action.RESOLVED
    assert "run-1" in resolved.reason
    clock.now += 901
    again = {AlertInstance("fp-drift", "2025-01-01T12:00:00Z")}
    assert book.on_firing("group-a", ("DataDriftDetected",), again).action == Action.START


def test_a_notification_without_firing_alerts_is_ignored(book: IncidentBook) -> None:
    assert book.on_firing("group-a", ("DataDriftDetected",), set()).action == Action.IGNORED


def test_a_restarted_receiver_remembers_incidents_and_cooldown(
    book: IncidentBook, tmp_path: Path, clock: Clock
) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    restarted = IncidentBook(tmp_path / "incidents.json", cooldown_s=900, clock=clock)
    assert restarted.on_firing("group-a", ("x",), DRIFT).action == Action.DUPLICATE
    assert restarted.on_firing("group-b", ("y",), PERFORMANCE).action == Action.COOLDOWN


def test_an_unreadable_book_is_set_aside_not_fatal(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "incidents.json"
    path.write_text("{not json")
    book = IncidentBook(path, cooldown_s=900, clock=clock)
    assert book.on_firing("group-a", ("x",), DRIFT).action == Action.START
    [aside] = path.parent.glob("incidents.json.corrupt-*")
    assert aside.read_text() == "{not json"


def test_after_a_lost_resolved_notification_the_next_occurrence_starts_a_retrain(
    book: IncidentBook, clock: Clock
) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    # Alertmanager's "resolved" for this occurrence never arrives; hours later the group fires
    # again: same group key, a new start time.
    clock.now += 2 * 3600
    again = {AlertInstance("fp-drift", "2025-01-01T12:00:00Z")}
    assert book.on_firing("group-a", ("DataDriftDetected",), again).action == Action.START


def test_an_occurrence_that_gains_an_alert_is_still_a_duplicate(book: IncidentBook) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    decision = book.on_firing("group-a", ("DataDriftDetected",), DRIFT | PERFORMANCE)
    assert decision.action == Action.DUPLICATE
    assert decision.flow_run_id == "run-1"


def test_an_incident_without_resolved_notification_expires(tmp_path: Path, clock: Clock) -> None:
    book = IncidentBook(tmp_path / "incidents.json", cooldown_s=900, clock=clock, max_open_s=3600)
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 3599
    assert book.on_firing("group-a", ("DataDriftDetected",), DRIFT).action == Action.DUPLICATE
    clock.now += 2
    assert book.on_firing("group-b", ("x",), PERFORMANCE).action == Action.START
    assert book.incidents == {}
    restarted = IncidentBook(tmp_path / "incidents.json", cooldown_s=900, clock=clock)
    assert restarted.incidents == {}


def test_incidents_expire_after_six_hours_by_default(book: IncidentBook, clock: Clock) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 6 * 3600 + 1
    assert book.on_firing("group-a", ("DataDriftDetected",), DRIFT).action == Action.START


def test_a_resolved_group_closes_every_open_occurrence(book: IncidentBook, clock: Clock) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    clock.now += 901
    again = {AlertInstance("fp-drift", "2025-01-01T12:00:00Z")}
    _start(book, "group-a", again, "run-2")
    resolved = book.on_resolved("group-a", ("DataDriftDetected",))
    assert "run-1" in resolved.reason and "run-2" in resolved.reason
    assert book.incidents == {}


def test_forgetting_closes_incidents_and_ends_the_cooldown(
    book: IncidentBook, clock: Clock, tmp_path: Path
) -> None:
    _start(book, "group-a", DRIFT, "run-1")
    assert book.forget() == 1
    restarted = IncidentBook(tmp_path / "incidents.json", cooldown_s=900, clock=clock)
    assert restarted.incidents == {} and restarted.last_retrain_at is None
    decision = book.on_firing("group-b", ("ModelPerformanceDegraded",), PERFORMANCE)
    assert decision.action == Action.START

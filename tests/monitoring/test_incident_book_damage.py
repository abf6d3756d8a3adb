"""A damaged incident book never stops the alert receiver: a book that cannot be read is set
aside, an incident that cannot be read is left out, the others kept, each named in its log."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from monitoring.incidents import Action, IncidentBook
from tests.monitoring.test_incidents import DRIFT, PERFORMANCE, Clock
from tests.state_damage import each_damage, set_aside, warnings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@each_damage
def test_a_damaged_book_is_set_aside_and_the_receiver_goes_on(
    tmp_path: Path, clock: Clock, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "incidents.json"
    path.write_bytes(damage)

    book = IncidentBook(path, cooldown_s=900, clock=clock)

    assert book.on_firing("group-a", ("x",), DRIFT).action == Action.START
    [aside] = set_aside(path)
    assert aside.read_bytes() == damage
    assert str(path) in warnings(caplog) and aside.name in warnings(caplog)


def test_an_incident_without_its_start_is_left_out_and_the_others_kept(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "incidents.json"
    good = {
        "group_key": "group-a",
        "started_at": clock.now,
        "flow_run_id": "run-1",
        "alerts": ["DataDriftDetected"],
        "instances": [[i.fingerprint, i.starts_at] for i in DRIFT],
    }
    broken = {"group_key": "group-b", "flow_run_id": "run-2", "instances": []}
    original = json.dumps({"incidents": {"a|1": good, "b|1": broken}, "last_retrain_at": None})
    path.write_text(original)

    book = IncidentBook(path, cooldown_s=900, clock=clock)

    assert book.on_firing("group-a", ("x",), DRIFT).action == Action.DUPLICATE
    assert book.on_firing("group-b", ("y",), PERFORMANCE).action == Action.START
    assert "incident b|1 (started_at: Field required)" in warnings(caplog)
    assert set(json.loads(path.read_text())["incidents"]) == {"a|1"}
    [aside] = set_aside(path)
    assert aside.read_text() == original and aside.name in warnings(caplog)


def test_a_last_retrain_time_that_is_no_time_ends_the_cooldown_only(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps({"incidents": {}, "last_retrain_at": "yesterday"}))

    book = IncidentBook(path, cooldown_s=900, clock=clock)

    assert book.on_firing("group-a", ("x",), DRIFT).action == Action.START
    assert "the last retrain's time" in warnings(caplog)


def test_the_book_is_written_private_and_whole(tmp_path: Path, clock: Clock) -> None:
    book = IncidentBook(tmp_path / "receiver" / "incidents.json", cooldown_s=900, clock=clock)
    decision = book.on_firing("group-a", ("x",), DRIFT)
    book.record_start(decision, DRIFT, "run-1")

    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600
    assert [p.name for p in book.path.parent.iterdir()] == ["incidents.json"]

"""The prediction-log writer on a real SQLite file and a real PostgreSQL server: batching,
back-pressure, flush on close, and what happens to rows the database refuses or cannot take yet.

One PostgreSQL server serves the module; each test that uses it gets a database of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from platform_core import prediction_log
from platform_core.prediction_log import rows_for
from serving.log_writer import PredictionLogWriter
from tests.postgres import PostgresServer
from tests.support import wait_for


def _rows(request_id: str, n: int) -> list[dict]:
    return rows_for(request_id, "m", "1", [{"x": float(i)} for i in range(n)], [0] * n, [0.1] * n)


def _records(url: str) -> list[tuple[str, int]]:
    """(request_id, record_index) of every logged row, in the order they were written."""
    table = prediction_log.predictions
    engine = prediction_log.connect(url)
    try:
        with engine.connect() as conn:
            query = sa.select(table.c.request_id, table.c.record_index).order_by(table.c.id)
            return [(row.request_id, row.record_index) for row in conn.execute(query)]
    finally:
        engine.dispose()


def _count(url: str) -> int:
    return len(_records(url))


def test_close_writes_everything_still_queued(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    writer = PredictionLogWriter(url, capacity=1_000, flush_interval_s=3600)
    writer.start()
    for i in range(10):
        writer.submit(_rows(f"r{i}", 3))
    assert writer.close(timeout_s=10) == 0
    assert _count(url) == 30


def test_flush_waits_until_submitted_rows_are_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    writer = PredictionLogWriter(url, capacity=1_000, flush_interval_s=3600)
    writer.start()
    writer.submit(_rows("a", 5))
    assert writer.flush(timeout_s=10)
    assert _count(url) == 5
    writer.close(timeout_s=10)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # Not started: nothing drains the queue.
    writer = PredictionLogWriter(url, capacity=10, flush_interval_s=3600, on_dropped=dropped.append)
    assert writer.submit(_rows("a", 8))
    assert not writer.submit(_rows("b", 3))
    assert dropped == [3]
    assert writer.depth == 8


def test_rows_wait_in_the_queue_while_the_database_is_unavailable(tmp_path: Path) -> None:
    missing_dir = tmp_path / "not-yet"
    url = f"sqlite:///{missing_dir / 'log.db'}"
    writer = PredictionLogWriter(url, capacity=100, flush_interval_s=0.05)
    writer.start()
    writer.submit(_rows("a", 4))
    assert not writer.flush(timeout_s=0.5)
    assert writer.depth == 4
    missing_dir.mkdir()
    assert writer.flush(timeout_s=15)
    assert _count(url) == 4
    writer.close(timeout_s=10)


def test_rows_carry_one_entry_per_record_in_order() -> None:
    rows = rows_for("req", "m", "3", [{"a": 1.0}, {"a": None}], [1, 0], [0.9, 0.2])
    assert [(r["record_index"], r["prediction"], r["features"]) for r in rows] == [
        (0, 1, '{"a": 1.0}'),
        (1, 0, '{"a": null}'),
    ]
    assert all(r["created_at"].tzinfo is dt.UTC for r in rows)


@pytest.mark.platform  # starts a PostgreSQL server: not in `make test-fast`
def test_a_postgresql_url_works_for_writes_and_labels(postgres: PostgresServer) -> None:
    url = postgres.fresh_database()
    writer = PredictionLogWriter(url, capacity=100, flush_interval_s=3600)
    writer.start()
    writer.submit(_rows("pg", 3))
    assert writer.flush(timeout_s=30)
    unknown = prediction_log.record_labels(writer.connection(), [("pg", 1, 1), ("pg", 9, 0)])
    assert writer.close(timeout_s=10) == 0
    engine = prediction_log.connect(url)
    labelled = prediction_log.read_recent(engine, 10, labelled_only=True)
    engine.dispose()
    assert unknown == [("pg", 9)]
    assert labelled["record_index"].tolist() == [1]
    assert labelled["x"].tolist() == [1.0]


def test_the_engine_is_available_before_any_write_and_retried_while_unreachable(
    tmp_path: Path,
) -> None:
    missing_dir = tmp_path / "not-yet"
    writer = PredictionLogWriter(f"sqlite:///{missing_dir / 'log.db'}", 10, flush_interval_s=3600)
    with pytest.raises(SQLAlchemyError):
        writer.connection()
    missing_dir.mkdir()
    assert prediction_log.record_labels(writer.connection(), [("r", 0, 1)]) == [("r", 0)]
    assert writer.close(timeout_s=10) == 0


def test_a_replayed_row_is_skipped_and_the_rows_behind_it_are_written(
    log_url: str, tmp_path: Path
) -> None:
    dead_letter = tmp_path / "dead-letter.jsonl"
    written: list[int] = []
    writer = PredictionLogWriter(
        log_url, 100, flush_interval_s=3600, on_written=written.append, dead_letter=dead_letter
    )
    writer.start()
    first = _rows("a", 3)
    writer.submit(first)
    assert writer.flush(timeout_s=10)
    # What a retry sends after a commit that went through unseen, with fresh rows behind it.
    writer.submit(first)
    writer.submit(_rows("b", 2))
    assert writer.flush(timeout_s=10)
    assert writer.depth == 0
    assert writer.close(timeout_s=10) == 0
    assert _records(log_url) == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    assert sum(written) == 5
    assert not dead_letter.exists()


# A row each database refuses for what it holds (SQLite does not enforce VARCHAR lengths), and
# the error it says so with.
REFUSED = {
    "sqlite": ({"prediction": None}, "IntegrityError", "NOT NULL constraint failed"),
    "postgresql": ({"model_name": "m" * 201}, "DataError", "value too long"),
}


def test_a_refused_row_is_dead_lettered_with_its_error_and_the_rows_around_it_are_written(
    log_url: str, tmp_path: Path
) -> None:
    change, error, message = REFUSED[sa.make_url(log_url).get_backend_name()]
    dead_letter = tmp_path / "dead-letter.jsonl"
    dead_lettered: list[int] = []
    writer = PredictionLogWriter(
        log_url,
        100,
        flush_interval_s=3600,
        dead_letter=dead_letter,
        on_dead_lettered=dead_lettered.append,
    )
    writer.start()
    poisoned = _rows("poisoned", 3)
    poisoned[1].update(change)
    for rows in (_rows("before", 2), poisoned, _rows("after", 2)):
        writer.submit(rows)
    assert writer.flush(timeout_s=10)
    assert writer.depth == 0
    assert writer.close(timeout_s=10) == 0
    assert _records(log_url) == [
        ("before", 0),
        ("before", 1),
        ("poisoned", 0),
        ("poisoned", 2),
        ("after", 0),
        ("after", 1),
    ]
    (line,) = dead_letter.read_text().splitlines()
    entry = json.loads(line)
    assert (entry["error"], entry["row"]["request_id"], entry["row"]["record_index"]) == (
        error,
        "poisoned",
        1,
    )
    assert message in entry["message"]
    assert dead_lettered == [1]


def _fail_at_once_when_locked(dbapi_connection, _record, _proxy) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def test_rows_wait_while_another_connection_holds_the_sqlite_write_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    dead_letter = tmp_path / "dead-letter.jsonl"
    writer = PredictionLogWriter(url, 100, flush_interval_s=0.05, dead_letter=dead_letter)
    # "database is locked" at once rather than after the 5 s busy timeout: the writer's handling
    # of the error is what is tested, not SQLite's wait.
    event.listen(writer.connection(), "checkout", _fail_at_once_when_locked)
    writer.start()
    holder = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        writer.submit(_rows("a", 3))
        wait_for(lambda: "database is locked" in caplog.text, 10, 0.05, what="a failed write")
        assert writer.depth == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert writer.flush(timeout_s=10)
    assert writer.close(timeout_s=10) == 0
    assert _records(url) == [("a", 0), ("a", 1), ("a", 2)]
    assert not dead_letter.exists()


@pytest.mark.platform  # starts a PostgreSQL server: not in `make test-fast`
def test_rows_wait_out_a_postgresql_restart_and_are_written_once(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.fresh_database()
    dead_letter = tmp_path / "dead-letter.jsonl"
    writer = PredictionLogWriter(url, 100, flush_interval_s=0.05, dead_letter=dead_letter)
    writer.start()
    writer.submit(_rows("before", 2))
    assert writer.flush(timeout_s=10)  # the pool now holds a connection the stop will cut
    postgres.stop()
    try:
        writer.submit(_rows("during", 3))
        failed = "Cannot write the prediction log"
        wait_for(lambda: failed in caplog.text, 10, 0.05, what="a failed write")
        assert writer.depth == 3
    finally:
        postgres.start()
    assert writer.flush(timeout_s=30)
    assert writer.close(timeout_s=10) == 0
    assert _records(url) == [("before", 0), ("before", 1), *[("during", i) for i in range(3)]]
    assert not dead_letter.exists()

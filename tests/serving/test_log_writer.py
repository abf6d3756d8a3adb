"""The prediction-log writer on a real SQLite file: batching, back-pressure, flush on close."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from platform_core import prediction_log
from platform_core.prediction_log import rows_for
from serving.log_writer import PredictionLogWriter
from tests.postgres import postgres_server


def _rows(request_id: str, n: int) -> list[dict]:
    return rows_for(request_id, "m", "1", [{"x": float(i)} for i in range(n)], [0] * n, [0.1] * n)


def _count(url: str) -> int:
    with prediction_log.connect(url).connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(prediction_log.predictions)
        ).scalar_one()


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
def test_a_postgresql_url_works_for_writes_and_labels() -> None:
    with postgres_server() as url:
        writer = PredictionLogWriter(url, capacity=100, flush_interval_s=3600)
        writer.start()
        writer.submit(_rows("pg", 3))
        assert writer.flush(timeout_s=30)
        unknown = prediction_log.record_labels(writer.connection(), [("pg", 1, 1), ("pg", 9, 0)])
        assert writer.close(timeout_s=10) == 0
        labelled = prediction_log.read_recent(prediction_log.connect(url), 10, labelled_only=True)
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

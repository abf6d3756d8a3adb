"""The prediction log's ``role`` column: a database written by an earlier release gains it in
place, and every reader of answers leaves a rollout candidate's shadow rows out.

On SQLite here; on PostgreSQL too, in the tests marked ``platform`` (they start a server).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import sqlalchemy as sa

from platform_core import prediction_log
from platform_core.prediction_log import (
    ROLE_CANARY,
    ROLE_CHAMPION,
    ROLE_SHADOW,
    predictions,
    rows_for,
    shadow_request_id,
)

# The table as releases before rollouts created it: no `role` column.
_OLD = sa.MetaData()
_OLD_TABLE = sa.Table(
    "predictions",
    _OLD,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("record_index", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("prediction", sa.Integer, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("label", sa.Integer, nullable=True),
    sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("request_id", "record_index", name="uq_prediction_record"),
    sa.Index("ix_predictions_created_at", "created_at"),
)


def _old_log(url: str, request_ids: list[str]) -> None:
    """A prediction log as an earlier release left it, with one row per request id."""
    engine = sa.create_engine(url)
    try:
        _OLD.create_all(engine)
        with engine.begin() as conn:
            for request_id in request_ids:
                row = rows_for(request_id, "m", "1", [{"x": 1.0}], [0], [0.2])[0]
                del row["role"]
                conn.execute(sa.insert(_OLD_TABLE), [row])
    finally:
        engine.dispose()


def _write(engine: sa.Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(predictions), rows)


def test_an_old_log_gains_the_role_column_and_its_rows_are_champion_answers(log_url: str) -> None:
    _old_log(log_url, ["old-1", "old-2"])
    engine = prediction_log.connect(log_url)
    try:
        recent = prediction_log.read_recent(engine, 10)
        _write(engine, rows_for("new", "m", "2", [{"x": 2.0}], [1], [0.8], role=ROLE_CANARY))
        roles = prediction_log.read_recent(engine, 10)[["request_id", "role"]].values.tolist()
    finally:
        engine.dispose()
    assert recent["request_id"].tolist() == ["old-1", "old-2"]
    assert roles == [["old-1", ROLE_CHAMPION], ["old-2", ROLE_CHAMPION], ["new", ROLE_CANARY]]


def test_processes_connecting_at_once_to_an_old_log_all_succeed(log_url: str) -> None:
    """Serving and the drift monitor start together: both find the column missing."""
    _old_log(log_url, ["old"])
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            prediction_log.connect(log_url).dispose()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    engine = prediction_log.connect(log_url)
    try:
        assert prediction_log.read_recent(engine, 10)["role"].tolist() == [ROLE_CHAMPION]
    finally:
        engine.dispose()


def _answer_and_shadow(engine: sa.Engine, request_id: str, labelled: bool = False) -> None:
    answer = rows_for(request_id, "m", "1", [{"x": 1.0}], [0], [0.2])
    shadow = rows_for(request_id, "m", "2", [{"x": 1.0}], [1], [0.7], role=ROLE_SHADOW)
    if labelled:
        now = dt.datetime.now(dt.UTC)
        for row in (*answer, *shadow):
            row.update(label=1, labelled_at=now)
    _write(engine, answer + shadow)


def test_shadow_rows_are_not_read_as_answers(tmp_path: Path) -> None:
    engine = prediction_log.connect(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        _answer_and_shadow(engine, "a", labelled=True)
        answers = prediction_log.read_recent(engine, 10)
        labelled = prediction_log.read_recent(engine, 10, labelled_only=True, model_name="m")
        everything = prediction_log.read_recent(engine, 10, include_shadow=True)
    finally:
        engine.dispose()
    assert answers["model_version"].tolist() == ["1"]
    assert labelled["model_version"].tolist() == ["1"]
    assert everything["role"].tolist() == [ROLE_CHAMPION, ROLE_SHADOW]


def test_a_shadow_row_is_logged_under_its_answers_request_id_with_a_suffix() -> None:
    (row,) = rows_for("abc", "m", "2", [{"x": 1.0}], [1], [0.7], role=ROLE_SHADOW)
    assert row["request_id"] == shadow_request_id("abc") == "abc.shadow"
    column = predictions.c.request_id.type
    assert isinstance(column, sa.String) and column.length is not None
    assert len(shadow_request_id("f" * 32)) <= column.length


def test_a_label_for_an_answer_reaches_its_shadow_row_too(tmp_path: Path) -> None:
    engine = prediction_log.connect(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        _answer_and_shadow(engine, "a")
        unknown = prediction_log.record_labels(engine, [("a", 0, 1), ("a.shadow", 0, 0)])
        everything = prediction_log.read_recent(engine, 10, include_shadow=True)
    finally:
        engine.dispose()
    # A shadow row is nobody's answer: its own id is not one a caller can label.
    assert unknown == [("a.shadow", 0)]
    assert everything[["role", "label"]].values.tolist() == [[ROLE_CHAMPION, 1], [ROLE_SHADOW, 1]]

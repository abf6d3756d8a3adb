"""The prediction log: one row per answered record, shared by serving, monitoring and retraining.

Features are stored as a JSON object so the table does not change when a model is trained on a
different dataset. Labels arrive later through ``POST /feedback`` and are stored beside the
prediction they belong to.
"""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the drift monitor read while serving writes; NORMAL sync is durable across
    # process crashes (only an OS crash can lose the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for the prediction log, creating the table if it does not exist."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


def read_recent(engine: Engine, limit: int, labelled_only: bool = False) -> pd.DataFrame:
    """The newest ``limit`` rows, oldest first: one column per feature, plus the log's columns."""
    query = sa.select(predictions).order_by(predictions.c.id.desc()).limit(limit)
    if labelled_only:
        query = query.where(predictions.c.label.is_not(None))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    if not rows:
        return pd.DataFrame()
    rows = list(reversed(rows))
    features = pd.DataFrame([json.loads(row["features"]) for row in rows])
    meta = pd.DataFrame([{k: v for k, v in row.items() if k != "features"} for row in rows])
    return pd.concat([features, meta], axis=1)

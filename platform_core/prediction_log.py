"""The prediction log: one row per scored record, shared by serving, monitoring and retraining.

Features are stored as a JSON object so the table does not change when a model is trained on a
different dataset. Labels arrive later through ``POST /feedback`` and are stored beside the
prediction they belong to.

``role`` says what a row's version was doing: ``champion`` or ``canary`` rows are answers the
caller got; ``shadow`` rows are a rollout candidate's scores of the same records, which nobody
saw. Readers that mean "what the service answered" (drift, retraining, the labs) read answers
only (:data:`ANSWERED`); a shadow row's request id is its answer's with :data:`SHADOW_SUFFIX`, so
the unique record key holds and a label sent for the answer reaches its shadow too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.schema import CreateColumn

# pandas only where frames are built: serving's supervising parent imports this module too.
if TYPE_CHECKING:
    import pandas as pd

metadata = sa.MetaData()

ROLE_CHAMPION = "champion"
ROLE_CANARY = "canary"  # a rollout candidate answered (its share of the traffic)
ROLE_SHADOW = "shadow"  # a rollout candidate scored the request after the champion answered it
# The log's request ids are 32 hex digits; with this suffix a shadow row's still fits the column.
SHADOW_SUFFIX = ".shadow"

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
    # Added after the table first shipped (see _ADDED_COLUMNS): rows written before were answers
    # of the champion, which is what the default says.
    sa.Column("role", sa.String(16), nullable=False, server_default=ROLE_CHAMPION),
    sa.UniqueConstraint("request_id", "record_index", name="uq_prediction_record"),
    sa.Index("ix_predictions_created_at", "created_at"),
)

# Columns an existing database may lack, added by connect() with ALTER TABLE ... ADD COLUMN: each
# has a default for the rows already there, so it is one statement on SQLite and PostgreSQL alike,
# with no copy of the table and no reader or writer to stop.
_ADDED_COLUMNS = ("role",)

# The rows the caller got: what "the service answered" means to every reader of the log.
ANSWERED = predictions.c.role != ROLE_SHADOW


def shadow_request_id(request_id: str) -> str:
    """The request id of the shadow rows of an answered request."""
    return f"{request_id}{SHADOW_SUFFIX}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the drift monitor read while serving writes; NORMAL sync is durable across
    # process crashes (only an OS crash can lose the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def safe_url(url: str) -> str:
    """The URL as it may be shown: logs, status pages and errors never carry its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparseable database URL>"


def connect(url: str) -> Engine:
    """An engine for the prediction log, creating the table if it does not exist and adding the
    columns a table written by an earlier release lacks."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError):
        # Serving and the drift monitor may both create the table at once: whoever lost the
        # race finds it there on a second look. Any other cause fails again, and is raised.
        metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(predictions.name)}


def _add_missing_columns(engine: Engine) -> None:
    missing = [name for name in _ADDED_COLUMNS if name not in _columns(engine)]
    for name in missing:
        spec = CreateColumn(predictions.c[name]).compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {predictions.name} ADD COLUMN {spec}"))
        except (OperationalError, ProgrammingError):
            # Another process (serving, the drift monitor) added it first: fine. Any other
            # cause leaves it missing, and is raised.
            if name not in _columns(engine):
                raise


def read_recent(
    engine: Engine,
    limit: int,
    labelled_only: bool = False,
    model_name: str | None = None,
    include_shadow: bool = False,
) -> pd.DataFrame:
    """The newest ``limit`` answered rows, oldest first: one column per feature, plus the log's
    columns. ``include_shadow`` adds a rollout candidate's shadow rows, which nobody was answered
    with.

    ``model_name`` filters in the query, before the limit: a window of N rows of one model, not
    N rows of every model of which some belong to it.
    """
    query = sa.select(predictions).order_by(predictions.c.id.desc()).limit(limit)
    if not include_shadow:
        query = query.where(ANSWERED)
    if labelled_only:
        query = query.where(predictions.c.label.is_not(None))
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    import pandas as pd

    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    if not rows:
        return pd.DataFrame()
    rows = list(reversed(rows))
    features = pd.DataFrame([json.loads(row["features"]) for row in rows])
    meta = pd.DataFrame([{k: v for k, v in row.items() if k != "features"} for row in rows])
    return pd.concat([features, meta], axis=1)


def record_labels(
    engine: Engine, labels: list[tuple[str, int, int]], labelled_at: dt.datetime | None = None
) -> list[tuple[str, int]]:
    """Attach true labels, each given as (request_id, record_index, label), to their predictions,
    and to the shadow rows of the same records (a candidate's live performance is measured on
    them).

    Returns the (request_id, record_index) pairs that match no answered prediction. A label sent
    twice overwrites the first one: the latest word on what happened wins.
    """
    when = labelled_at or dt.datetime.now(dt.UTC)
    wanted = {(request_id, index): label for request_id, index, label in labels}
    request_ids = sorted({request_id for request_id, _ in wanted})
    found: set[tuple[str, int]] = set()
    with engine.begin() as conn:
        # Chunked: SQLite allows at most a few thousand bound parameters per statement.
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            query = sa.select(predictions.c.request_id, predictions.c.record_index).where(
                predictions.c.request_id.in_(chunk), ANSWERED
            )
            found.update((row.request_id, row.record_index) for row in conn.execute(query))
        matched = [key for key in wanted if key in found]
        if matched:
            conn.execute(
                sa.update(predictions)
                .where(
                    predictions.c.request_id == sa.bindparam("b_request_id"),
                    predictions.c.record_index == sa.bindparam("b_record_index"),
                )
                .values(label=sa.bindparam("b_label"), labelled_at=when),
                [
                    {"b_request_id": row_id, "b_record_index": idx, "b_label": wanted[(rid, idx)]}
                    for rid, idx in matched
                    for row_id in (rid, shadow_request_id(rid))
                ],
            )
    return [key for key in wanted if key not in found]


def rows_for(
    request_id: str,
    model_name: str,
    model_version: str,
    records: list[dict[str, Any]],
    predictions: list[int],
    probabilities: list[float],
    role: str = ROLE_CHAMPION,
) -> list[dict[str, Any]]:
    """Prediction-log rows for one scored request, one per record. ``request_id`` is the one the
    caller got; shadow rows (``role`` shadow) are logged under :func:`shadow_request_id` of it."""
    now = dt.datetime.now(dt.UTC)
    logged_id = shadow_request_id(request_id) if role == ROLE_SHADOW else request_id
    return [
        {
            "request_id": logged_id,
            "record_index": index,
            "created_at": now,
            "model_name": model_name,
            "model_version": model_version,
            "features": json.dumps(record, allow_nan=False),
            "prediction": prediction,
            "probability": probability,
            "role": role,
        }
        for index, (record, prediction, probability) in enumerate(
            zip(records, predictions, probabilities, strict=True)
        )
    ]

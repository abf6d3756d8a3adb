"""Writes the prediction log off the request path: a bounded in-memory queue drained in batches.

A request only appends its rows to the queue; one thread inserts whatever has accumulated every
``prediction_log_flush_interval_s`` (sooner when a batch is large, or when someone needs the rows
on disk now). A slow or unavailable database therefore never slows down predictions. The price is
bounded memory: past ``prediction_log_queue_size`` pending rows, new rows are dropped and counted
(``serving_prediction_log_dropped_total``) rather than blocking requests or exhausting memory.
:meth:`close` writes everything still queued, so a graceful restart loses nothing.

Inserts are idempotent: a row whose record (request id and index) is already logged is skipped,
so replaying a batch whose commit went through unseen (the connection dropped before the answer)
is not an error. Only errors that pass with time keep rows queued and retried: the database
unreachable, restarting or locked (:func:`is_transient`). Any other error is about the rows
themselves (a value too long for its column, a required one missing): the batch is
split until the rows at fault are found, the others are written, and each refused row goes to
the dead-letter file (one JSON line with the error) and is counted
(``serving_prediction_log_dead_lettered_total``). So one bad row never holds up the rows behind
it, nor ``/feedback``, which waits for them; and every row ends in the table or in that file.

The database engine is created on first use by whoever needs it first, the writer thread or
:meth:`connection` (feedback labels update rows written before a restart, when this process may
not have written anything yet).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.sql.dml import Insert

from platform_core import prediction_log

log = logging.getLogger(__name__)

# Rows per INSERT: large enough to amortise a commit, small enough to keep one transaction short.
MAX_ROWS_PER_WRITE = 5_000
_MAX_BACKOFF_S = 10.0

Counter = Callable[[int], None]
Row = dict[str, Any]


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` passes with time, so the same rows should be tried again.

    OperationalError covers a server down, restarting or cutting connections (psycopg's
    AdminShutdown, CannotConnectNow), a serialization failure or deadlock, and SQLite's "database
    is locked"; InterfaceError a connection psycopg already knows is closed. SQLAlchemy flags any
    other error it recognises as a lost connection with ``connection_invalidated``.
    """
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    # Out of pooled connections, or one found dead on checkout.
    return isinstance(error, PoolTimeoutError | DisconnectionError)


def insert_once(dialect: str) -> Insert:
    """An INSERT of prediction-log rows that skips a row whose record is already logged, and
    returns the id of each row it adds (psycopg's batched executemany leaves no rowcount)."""
    table = prediction_log.predictions
    # The columns of uq_prediction_record: a record is logged once.
    record = [table.c.request_id, table.c.record_index]
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is not None:
        return insert(table).on_conflict_do_nothing(index_elements=record).returning(table.c.id)
    # Another database: a replayed row is refused as a duplicate and dead-lettered.
    return table.insert()


class PredictionLogWriter:
    def __init__(
        self,
        url: str,
        capacity: int,
        flush_interval_s: float,
        on_written: Counter = lambda _n: None,
        on_dropped: Counter = lambda _n: None,
        dead_letter: Path | None = None,
        on_dead_lettered: Counter = lambda _n: None,
    ) -> None:
        """``dead_letter`` is the JSON-lines file refused rows are appended to; without one they
        are written to this module's log instead."""
        self.url = url
        self.capacity = capacity
        self.flush_interval_s = flush_interval_s
        self.dead_letter = dead_letter
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._on_dead_lettered = on_dead_lettered
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._rows: deque[Row] = deque()
        self._cond = threading.Condition()
        self._submitted = 0  # rows accepted so far, a sequence number for flush()
        self._settled = 0  # of those, rows written or dead-lettered
        self._flush_target = 0  # flush() callers wait for _settled to reach this
        self._stopping = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    @property
    def depth(self) -> int:
        """Rows accepted but not yet written."""
        return len(self._rows)

    @property
    def safe_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def start(self) -> None:
        self._thread.start()

    def connection(self) -> Engine:
        """The prediction log's engine, created now if nobody needed it yet.

        Raises SQLAlchemyError while the database cannot be reached; the next call tries again.
        """
        with self._engine_lock:
            if self._engine is None:
                self._engine = prediction_log.connect(self.url)
            return self._engine

    def submit(self, rows: list[Row]) -> bool:
        """Queue rows without blocking; drop them (and count it) when the queue is full."""
        with self._cond:
            if self._stopping or len(self._rows) + len(rows) > self.capacity:
                dropped = True
            else:
                self._rows.extend(rows)
                self._submitted += len(rows)
                dropped = False
                if len(self._rows) >= MAX_ROWS_PER_WRITE:
                    self._cond.notify()
        if dropped:
            self._on_dropped(len(rows))
        return not dropped

    def flush(self, timeout_s: float) -> bool:
        """Wait until every row submitted before this call is written (or dead-lettered). False
        on timeout."""
        with self._cond:
            target = self._submitted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._settled >= target, timeout=timeout_s)

    def close(self, timeout_s: float) -> int:
        """Write everything still queued, then stop. Returns how many rows are neither in the
        table nor in the dead-letter file."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        lost = len(self._rows)
        if lost:
            log.error(
                "Shutting down with %d prediction-log rows not written to %s.", lost, self.safe_url
            )
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
        return lost

    def _run(self) -> None:
        while True:
            with self._cond:
                # Batch for up to the flush interval unless rows are needed on disk sooner.
                self._cond.wait_for(self._write_now, timeout=self.flush_interval_s)
                stopping = self._stopping
                batch = [self._rows[i] for i in range(min(len(self._rows), MAX_ROWS_PER_WRITE))]
            settled = self._write(batch, final=stopping) if batch else 0
            with self._cond:
                for _ in range(settled):
                    self._rows.popleft()
                self._settled += settled
                self._cond.notify_all()
                if stopping and (settled < len(batch) or not self._rows):
                    return

    def _write_now(self) -> bool:
        return (
            self._stopping
            or self._settled < self._flush_target
            or len(self._rows) >= MAX_ROWS_PER_WRITE
        )

    def _write(self, batch: list[Row], final: bool) -> int:
        """Write one batch in order; returns how many of its first rows are settled (written,
        found already logged, or dead-lettered). Fewer than all only when stopping while the
        database is unavailable; until then, back off and retry, logging once per outage."""
        settled = 0
        refused: list[tuple[Row, Exception]] = []
        chunks = [batch]  # the next one to write is last
        backoff = 0.5
        try:
            while chunks:
                chunk = chunks.pop()
                try:
                    written = self._insert(chunk)
                except Exception as error:
                    # No engine yet means the database could not be reached or set up (the table
                    # created): no row's fault, so every row waits.
                    if self._engine is not None and not is_transient(error):
                        if len(chunk) == 1:
                            refused.append((chunk[0], error))
                            settled += 1
                        else:
                            half = len(chunk) // 2
                            chunks += [chunk[half:], chunk[:half]]
                        continue
                    self._report_outage(error)
                    if final:
                        return settled
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, timeout=backoff)
                        final = self._stopping  # one last try, then give up
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    chunks.append(chunk)
                    continue
                if self._failing:
                    log.info("Prediction log at %s is writable again.", self.safe_url)
                    self._failing = False
                self._on_written(written)
                settled += len(chunk)
        finally:
            if refused:
                self._set_aside(refused, written=settled - len(refused))
        return settled

    def _insert(self, rows: list[Row]) -> int:
        """Insert rows in one transaction; returns how many were not logged already."""
        engine = self.connection()
        with engine.begin() as conn:
            result = conn.execute(insert_once(engine.dialect.name), rows)
            return len(result.all()) if result.returns_rows else len(rows)

    def _report_outage(self, error: Exception) -> None:
        if not self._failing:
            log.error(
                "Cannot write the prediction log to %s (%s); keeping %d rows queued and retrying.",
                self.safe_url,
                _headline(error),
                len(self._rows),
            )
            self._failing = True

    def _set_aside(self, refused: list[tuple[Row, Exception]], written: int) -> None:
        """Append refused rows to the dead-letter file, count them, and say so in one line."""
        at = dt.datetime.now(dt.UTC).isoformat()
        lines = "".join(
            json.dumps(
                {"at": at, "error": type(error).__name__, "message": _message(error), "row": row},
                default=_json_default,
            )
            + "\n"
            for row, error in refused
        )
        reason = _headline(refused[0][1])
        self._on_dead_lettered(len(refused))
        problem = self._append_dead_letters(lines)
        if problem:
            log.error(
                "The prediction log at %s refused %d rows (%s) and they cannot be set aside in "
                "a dead-letter file (%s); here they are, one JSON line each:\n%s",
                self.safe_url,
                len(refused),
                reason,
                problem,
                lines.rstrip(),
            )
            return
        log.error(
            "The prediction log at %s refused %d rows (%s); they are in %s, and the other %d "
            "rows of the batch are in the table.",
            self.safe_url,
            len(refused),
            reason,
            self.dead_letter,
            written,
        )

    def _append_dead_letters(self, lines: str) -> str | None:
        """Append to the dead-letter file; what went wrong, or None."""
        if self.dead_letter is None:
            return "none is configured"
        try:
            self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter.open("a") as file:
                file.write(lines)  # one write: whole lines, even with several workers appending
        except OSError as error:
            return str(error)
        return None


def _message(error: Exception) -> str:
    """The database's (or driver's) own words, without SQLAlchemy's SQL and parameters."""
    original = error.orig if isinstance(error, StatementError) else None
    return str(original if original is not None else error).strip()


def _headline(error: Exception) -> str:
    lines = _message(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)

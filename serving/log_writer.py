"""Writes the prediction log off the request path: a bounded in-memory queue drained in batches.

A request only appends its rows to the queue; one thread inserts whatever has accumulated every
``prediction_log_flush_interval_s`` (sooner when a batch is large, or when someone needs the rows
on disk now). A slow or unavailable database therefore never slows down predictions. The price is
bounded memory: past ``prediction_log_queue_size`` pending rows, new rows are dropped and counted
(``serving_prediction_log_dropped_total``) rather than blocking requests or exhausting memory.
Rows that fail to insert stay queued and are retried. :meth:`close` writes everything still queued,
so a graceful restart loses nothing.

The database engine is created on first use by whoever needs it first, the writer thread or
:meth:`connection` (feedback labels update rows written before a restart, when this process may
not have written anything yet).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from platform_core import prediction_log

log = logging.getLogger(__name__)

# Rows per INSERT: large enough to amortise a commit, small enough to keep one transaction short.
MAX_ROWS_PER_WRITE = 5_000
_MAX_BACKOFF_S = 10.0

Counter = Callable[[int], None]


class PredictionLogWriter:
    def __init__(
        self,
        url: str,
        capacity: int,
        flush_interval_s: float,
        on_written: Counter = lambda _n: None,
        on_dropped: Counter = lambda _n: None,
    ) -> None:
        self.url = url
        self.capacity = capacity
        self.flush_interval_s = flush_interval_s
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._rows: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._submitted = 0  # rows accepted so far, a sequence number for flush()
        self._settled = 0  # of those, rows written
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

    def submit(self, rows: list[dict[str, Any]]) -> bool:
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
        """Wait until every row submitted before this call is written. False on timeout."""
        with self._cond:
            target = self._submitted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._settled >= target, timeout=timeout_s)

    def close(self, timeout_s: float) -> int:
        """Write everything still queued, then stop. Returns how many rows could not be written."""
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
            if batch and not self._write(batch, final=stopping):
                if stopping:
                    return
                continue
            with self._cond:
                for _ in batch:
                    self._rows.popleft()
                self._settled += len(batch)
                self._cond.notify_all()
                if stopping and not self._rows:
                    return

    def _write_now(self) -> bool:
        return (
            self._stopping
            or self._settled < self._flush_target
            or len(self._rows) >= MAX_ROWS_PER_WRITE
        )

    def _write(self, batch: list[dict[str, Any]], final: bool) -> bool:
        """Insert one batch; on failure log once per outage and back off. True when written."""
        backoff = 0.5
        while True:
            try:
                with self.connection().begin() as conn:
                    conn.execute(prediction_log.predictions.insert(), batch)
            except SQLAlchemyError as error:
                if not self._failing:
                    log.error(
                        "Cannot write the prediction log to %s (%s); keeping %d rows queued "
                        "and retrying.",
                        self.safe_url,
                        str(error).splitlines()[0],
                        len(self._rows),
                    )
                    self._failing = True
                if final:
                    return False
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, timeout=backoff)
                    if self._stopping:
                        final = True
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            if self._failing:
                log.info("Prediction log at %s is writable again.", self.safe_url)
                self._failing = False
            self._on_written(len(batch))
            return True

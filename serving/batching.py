"""Adaptive batching: requests that arrive while the model is busy are scored together.

Scoring one record with a scikit-learn pipeline costs about as much as scoring a hundred (the
DataFrame and ColumnTransformer overhead dominates; see ``benchmarks/bench_serving.py``), so under
concurrent load the throughput limit is calls per second, not records. One consumer takes every
request queued so far, scores them in a single call on a worker thread, and hands each request
its slice. At low load a batch is one request and nothing waits; under load, batches grow by
themselves to whatever accumulated during the previous call.

Why not BentoML's ``batchable`` API: it merges the inputs of several requests before our code
runs, so one request's bad record would fail its neighbours, and input checked per model version
would have to happen after the merge. Here each request is validated on its own first and only
valid records are batched; each batch is grouped by model version, so a hot swap never mixes two
versions in one call.

Under overload the queue is what grows, so it is bounded: past ``max_waiting_records`` records
waiting to be scored, :meth:`MicroBatcher.score` raises :class:`Overloaded` at once and the service
answers 503 with ``Retry-After``. Shedding early keeps latency bounded for the requests that are
accepted and memory bounded for the process, instead of every client timing out together.

``max_wait_s`` (``serving_batch_wait_s``) holds each batch open that long for more requests, as
Triton's ``max_queue_delay_microseconds`` does (BentoML's ``max_latency_ms`` is something else: a
latency target past which its dispatcher rejects requests): fewer, fuller model calls under light
load, paid for by up to that much added latency on every request. The default, 0, never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread

if TYPE_CHECKING:
    # Types only: the service imports this module in BentoML's supervising process too, which
    # needs neither MLflow nor scikit-learn.
    from serving.model import Scores

# Enough for a few batches to build up behind the one being scored, short enough to wait out.
WAITING_BATCHES = 8


class Scorer(Protocol):
    """What the batcher needs of a model (serving.model.LoadedModel is one): its version, for the
    metrics, and one call that scores several requests' records."""

    @property
    def version(self) -> str: ...

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]: ...


class Overloaded(Exception):
    """More records are waiting to be scored than the batcher accepts; retry shortly."""


@dataclass
class _Job:
    model: Scorer
    records: list[dict[str, Any]]
    future: asyncio.Future[Scores]


class MicroBatcher:
    def __init__(
        self,
        max_records: int,
        max_waiting_records: int | None = None,
        max_wait_s: float = 0.0,
        on_scored: Callable[[str, float], None] | None = None,
    ) -> None:
        """``on_scored(version, seconds)`` is told how long each model call took."""
        self.max_records = max_records
        self.max_wait_s = max_wait_s
        self.on_scored = on_scored
        self.max_waiting_records = max_waiting_records or WAITING_BATCHES * max_records
        if self.max_waiting_records < max_records:
            # Otherwise a request of max_records records could never be accepted.
            raise ValueError(
                f"max_waiting_records ({self.max_waiting_records}) must be at least "
                f"max_records ({max_records})"
            )
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._waiting = 0  # records queued, not yet taken into a batch
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Records accepted and not yet being scored."""
        return self._waiting

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def score(self, model: Scorer, records: list[dict[str, Any]]) -> Scores:
        """Scores for these records, or Overloaded without waiting when too many are queued."""
        if self._waiting + len(records) > self.max_waiting_records:
            raise Overloaded(
                f"{self._waiting} records are waiting to be scored (limit "
                f"{self.max_waiting_records})"
            )
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, records, future))
        self._waiting += len(records)
        return await future

    async def _run(self) -> None:
        while True:
            jobs, size = await self._collect()
            self._waiting -= size
            # By model, not by arrival: during a canary the two versions' requests interleave,
            # and each version still takes one call per batch.
            groups: dict[int, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(id(job.model), []).append(job)
            for group in groups.values():
                await self._score_group(group)

    async def _collect(self) -> tuple[list[_Job], int]:
        """The next batch: the oldest request, then whatever is queued, waiting up to
        ``max_wait_s`` after the oldest for more, until ``max_records`` are taken."""
        jobs = [await self._queue.get()]
        size = len(jobs[0].records)
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_records:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            size += len(job.records)
        return jobs, size

    async def _score_group(self, jobs: Sequence[_Job]) -> None:
        model = jobs[0].model
        started = time.perf_counter()
        try:
            scores = await anyio.to_thread.run_sync(model.score, [job.records for job in jobs])
        except Exception as error:  # answered as a 500 to these requests, the loop goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        if self.on_scored is not None:
            self.on_scored(model.version, time.perf_counter() - started)
        for job, result in zip(jobs, scores, strict=True):
            # A client that disconnected has cancelled its future.
            if not job.future.done():
                job.future.set_result(result)

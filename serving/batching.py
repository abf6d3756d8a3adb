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
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from serving.model import LoadedModel, Scores


@dataclass
class _Job:
    model: LoadedModel
    records: list[dict[str, Any]]
    future: asyncio.Future[Scores]


class MicroBatcher:
    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def score(self, model: LoadedModel, records: list[dict[str, Any]]) -> Scores:
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, records, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].records)
            while size < self.max_records and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                size += len(job.records)
            for _, group in itertools.groupby(jobs, key=lambda job: id(job.model)):
                await self._score_group(list(group))

    @staticmethod
    async def _score_group(jobs: Sequence[_Job]) -> None:
        model = jobs[0].model
        try:
            scores = await anyio.to_thread.run_sync(model.score, [job.records for job in jobs])
        except Exception as error:  # answered as a 500 to these requests, the loop goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, result in zip(jobs, scores, strict=True):
            # A client that disconnected has cancelled its future.
            if not job.future.done():
                job.future.set_result(result)

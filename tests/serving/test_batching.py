"""The micro-batcher sheds load past its bound instead of queueing without limit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from serving.batching import MicroBatcher, Overloaded
from serving.model import Scores


class _GatedModel:
    """Scores only when the test opens the gate, so records pile up behind the first batch."""

    version = "1"

    def __init__(self) -> None:
        self.scoring = threading.Event()
        self.gate = threading.Event()

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]:
        self.scoring.set()
        self.gate.wait(timeout=10)
        return [Scores([0] * len(b), [0.1] * len(b)) for b in batches]


def _records(n: int) -> list[dict[str, Any]]:
    return [{"x": float(i)} for i in range(n)]


async def _wait(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10)


def test_records_past_the_bound_are_shed_at_once_and_accepted_again_after_draining() -> None:
    async def scenario() -> None:
        model = _GatedModel()
        batcher = MicroBatcher(max_records=2, max_waiting_records=4)
        batcher.start()
        try:
            first = asyncio.create_task(batcher.score(model, _records(2)))
            await _wait(model.scoring)  # taken into a batch: no longer waiting
            queued = [asyncio.create_task(batcher.score(model, _records(2))) for _ in range(2)]
            await asyncio.sleep(0)
            assert batcher.waiting == 4
            with pytest.raises(Overloaded, match="4 records are waiting"):
                await batcher.score(model, _records(1))
            model.gate.set()
            results = await asyncio.gather(first, *queued)
            assert [len(r.predictions) for r in results] == [2, 2, 2]
            assert batcher.waiting == 0
            assert (await batcher.score(model, _records(1))).predictions == [0]
        finally:
            model.gate.set()
            await batcher.stop()

    asyncio.run(scenario())


def test_the_default_bound_is_eight_full_batches() -> None:
    assert MicroBatcher(max_records=50).max_waiting_records == 400


def test_a_bound_below_one_full_request_is_refused() -> None:
    with pytest.raises(ValueError, match="at least max_records"):
        MicroBatcher(max_records=50, max_waiting_records=10)


class _CountingModel:
    """Answers at once and remembers how many requests each model call scored."""

    version = "7"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]:
        self.calls.append(len(batches))
        return [Scores([0] * len(b), [0.1] * len(b)) for b in batches]


async def _timed(batcher: MicroBatcher, model: _CountingModel, n: int) -> float:
    started = asyncio.get_running_loop().time()
    await batcher.score(model, _records(n))
    return asyncio.get_running_loop().time() - started


def test_a_batch_wait_holds_the_batch_open_for_later_requests_and_delays_the_first() -> None:
    async def scenario() -> None:
        model = _CountingModel()
        scored: list[tuple[str, float]] = []
        batcher = MicroBatcher(
            max_records=10, max_wait_s=0.3, on_scored=lambda v, s: scored.append((v, s))
        )
        batcher.start()
        try:
            first = asyncio.create_task(_timed(batcher, model, 1))
            await asyncio.sleep(0.1)
            second = asyncio.create_task(_timed(batcher, model, 1))
            waited = await asyncio.gather(first, second)
        finally:
            await batcher.stop()
        assert model.calls == [2], "both requests belong in one model call"
        assert waited[0] >= 0.3, "the oldest request waits out the window"
        assert waited[1] < waited[0]
        assert [version for version, _ in scored] == ["7"]
        assert 0 <= scored[0][1] < 0.3, "the model call's own time, not the wait"

    asyncio.run(scenario())


def test_a_full_batch_is_scored_without_waiting_out_the_window() -> None:
    async def scenario() -> None:
        model = _CountingModel()
        batcher = MicroBatcher(max_records=2, max_wait_s=5.0)
        batcher.start()
        try:
            waited = await asyncio.wait_for(
                asyncio.gather(_timed(batcher, model, 1), _timed(batcher, model, 1)), 4
            )
        finally:
            await batcher.stop()
        assert model.calls == [2]
        assert max(waited) < 4

    asyncio.run(scenario())


def test_without_a_wait_a_lone_request_is_scored_at_once() -> None:
    async def scenario() -> None:
        model = _CountingModel()
        batcher = MicroBatcher(max_records=10)
        batcher.start()
        try:
            waited = await _timed(batcher, model, 1)
        finally:
            await batcher.stop()
        # Far below any wait worth configuring; generous for a busy CI machine.
        assert waited < 0.25
        assert model.calls == [1]

    asyncio.run(scenario())

"""The shadow scorer works off the request path: a full queue drops and counts, a candidate that
rejects or fails is counted, and none of it ever reaches the caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from serving.model import Scores
from serving.schema import RecordSchema
from serving.shadow import ERROR, INVALID, ShadowJob, ShadowResult, ShadowScorer
from tests.support import wait_for


class _Candidate:
    """A candidate taking one numeric feature ``x``; it records each call, can be held at a
    gate, and can be made to fail."""

    name = "m"
    version = "2"
    schema = RecordSchema({"x": "numeric"})

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[int] = []
        self.scoring = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def score(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[Scores]:
        self.scoring.set()
        self.gate.wait(timeout=10)
        self.calls.append(len(batches))
        if self.fail:
            raise RuntimeError("the candidate is broken")
        return [Scores([1] * len(b), [0.9] * len(b)) for b in batches]


def _job(candidate: _Candidate, records: list[dict[str, Any]], request_id: str = "r") -> ShadowJob:
    answer = Scores([0] * len(records), [0.1] * len(records))
    # A stand-in for serving.model.LoadedModel: the scorer needs its version, schema and score.
    return ShadowJob(request_id, records, candidate, answer, answered_by="1")  # pyright: ignore[reportArgumentType]


class _Recorder:
    def __init__(self) -> None:
        self.scored: list[ShadowResult] = []
        self.dropped: list[int] = []
        self.failed: list[tuple[str, int]] = []

    def scorer(self, capacity: int = 100) -> ShadowScorer:
        return ShadowScorer(
            capacity,
            on_scored=self.scored.append,
            on_dropped=self.dropped.append,
            on_failed=lambda reason, n: self.failed.append((reason, n)),
        )


def test_a_full_queue_drops_and_counts_without_blocking_or_raising() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer(capacity=3)  # not started: nothing drains the queue
    candidate = _Candidate()

    assert scorer.submit(_job(candidate, [{"x": 1.0}, {"x": 2.0}]))
    assert not scorer.submit(_job(candidate, [{"x": 3.0}, {"x": 4.0}]))
    assert recorder.dropped == [2]
    assert scorer.depth == 2


def test_queued_jobs_are_scored_together_in_one_call_per_candidate() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer()
    candidate = _Candidate()
    candidate.gate.clear()
    scorer.start()
    try:
        scorer.submit(_job(candidate, [{"x": 1.0}], "first"))
        assert candidate.scoring.wait(10)  # the first call holds the thread: the rest queue up
        for i in range(3):
            scorer.submit(_job(candidate, [{"x": float(i)}], f"queued-{i}"))
        candidate.gate.set()
        wait_for(lambda: len(recorder.scored) == 4, 10, what="every job to be scored")
    finally:
        scorer.close(timeout_s=10)
    assert candidate.calls == [1, 3]
    assert [r.job.request_id for r in recorder.scored] == [
        "first",
        *(f"queued-{i}" for i in range(3)),
    ]
    assert recorder.scored[1].scores == Scores([1], [0.9])


def test_records_the_candidate_rejects_are_counted_invalid_and_the_rest_scored() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer()
    candidate = _Candidate()
    scorer.score([_job(candidate, [{"x": 1.0, "y": 2.0}], "bad"), _job(candidate, [{"x": 1.0}])])

    assert recorder.failed == [(INVALID, 1)]
    assert [r.job.request_id for r in recorder.scored] == ["r"]


def test_a_candidate_that_raises_is_counted_and_the_scorer_goes_on() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer()
    broken = _Candidate(fail=True)
    scorer.start()
    try:
        scorer.submit(_job(broken, [{"x": 1.0}, {"x": 2.0}]))
        wait_for(lambda: recorder.failed, 10, what="the failure to be counted")
        working = _Candidate()
        scorer.submit(_job(working, [{"x": 3.0}]))
        wait_for(lambda: recorder.scored, 10, what="the next job to be scored")
    finally:
        scorer.close(timeout_s=10)
    assert recorder.failed == [(ERROR, 2)]


def test_close_scores_what_is_queued_then_refuses_more() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer()
    candidate = _Candidate()
    for i in range(5):
        scorer.submit(_job(candidate, [{"x": float(i)}], f"r{i}"))
    scorer.start()

    assert scorer.close(timeout_s=10) == 0
    assert len(recorder.scored) == 5
    assert not scorer.submit(_job(candidate, [{"x": 0.0}]))
    assert recorder.dropped == [1]


def test_flush_waits_until_queued_jobs_are_handed_on() -> None:
    recorder = _Recorder()
    scorer = recorder.scorer()
    candidate = _Candidate()
    candidate.gate.clear()
    scorer.start()
    try:
        scorer.submit(_job(candidate, [{"x": 1.0}]))
        assert not scorer.flush(timeout_s=0.2)
        candidate.gate.set()
        assert scorer.flush(timeout_s=10)
        assert len(recorder.scored) == 1
    finally:
        scorer.close(timeout_s=10)

"""Shadow scoring: a rollout candidate scores what the champion answered, after it answered.

The request handler only appends a job to a bounded queue and returns the champion's answer; it
never waits for the candidate and never sees its errors. One thread takes whatever has
accumulated, checks each request's records against the candidate's own input schema (a candidate
may take other features than the champion), scores them in one model call per candidate (one
call costs about the same for 1 or 100 records, see :mod:`serving.batching`), and hands each
result on: the service logs it as shadow rows and counts it.

Bounded: past ``shadow_queue_records`` records waiting, a job is dropped and counted
(``serving_shadow_dropped_total``), so a slow candidate costs shadow coverage, never the
caller's latency or the process's memory. A request the candidate rejects or fails on is counted
by reason (``serving_shadow_failed_total``) and logged once per candidate version.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import ValidationError

if TYPE_CHECKING:
    from serving.model import LoadedModel, Scores

log = logging.getLogger(__name__)

# Records scored in one candidate call: a few requests' worth, so one call never holds the GIL
# for long while requests wait for the event loop.
MAX_RECORDS_PER_CALL = 1_000
# How long the thread lets requests accumulate before scoring them: one call for a tenth of a
# second of traffic rather than one per request, so the thread takes the interpreter (and the
# event loop's turn) ten times a second at most, whatever the rate. A label sent at once waits
# that much longer for its shadow row (feedback waits for it).
LINGER_S = 0.1

INVALID = "invalid"  # the candidate's schema rejects the records the champion accepted
ERROR = "error"  # the candidate raised while scoring them


@dataclass(frozen=True)
class ShadowJob:
    """One answered request for the candidate to score."""

    request_id: str
    records: Sequence[Mapping[str, Any]]  # as received: the candidate checks them itself
    candidate: LoadedModel
    # What the caller got, and from which version: for comparing the two models' answers.
    answer: Scores
    answered_by: str


@dataclass(frozen=True)
class ShadowResult:
    job: ShadowJob
    records: list[dict[str, Any]]  # as the candidate's schema accepted them (what the log keeps)
    scores: Scores


class ShadowScorer:
    def __init__(
        self,
        capacity_records: int,
        on_scored: Callable[[ShadowResult], None] = lambda _r: None,
        on_dropped: Callable[[int], None] = lambda _n: None,
        on_failed: Callable[[str, int], None] = lambda _reason, _n: None,
        on_scoring: Callable[[str, float], None] = lambda _version, _s: None,
        on_requests: Callable[[str, bool, int], None] = lambda _version, _ok, _n: None,
    ) -> None:
        """``on_failed(reason, records)`` with reason INVALID or ERROR; ``on_scoring(version,
        seconds)`` is told how long each candidate call took; ``on_requests(version, ok, jobs)``
        how many requests it scored or failed on (per-version error ratios)."""
        self.capacity = capacity_records
        self._on_scored = on_scored
        self._on_dropped = on_dropped
        self._on_failed = on_failed
        self._on_scoring = on_scoring
        self._on_requests = on_requests
        self._jobs: deque[ShadowJob] = deque()
        self._waiting = 0  # records queued
        self._submitted = 0  # jobs accepted so far, a sequence number for flush()
        self._settled = 0  # of those, jobs scored, failed or dropped
        self._cond = threading.Condition()
        self._stopping = False
        self._reported: set[tuple[str, str]] = set()  # (version, reason) said once in the log
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)

    @property
    def depth(self) -> int:
        """Records waiting to be shadow-scored."""
        return self._waiting

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Queue a job without blocking; drop it (and count it) when the queue is full."""
        size = len(job.records)
        with self._cond:
            accepted = not self._stopping and self._waiting + size <= self.capacity
            if accepted:
                self._jobs.append(job)
                self._waiting += size
                self._submitted += 1
                # Wake the thread for the first job, or when a call's worth is waiting: in
                # between it lingers, and waking it for each request would cost a switch each.
                if len(self._jobs) == 1 or self._waiting >= MAX_RECORDS_PER_CALL:
                    self._cond.notify_all()
        if not accepted:
            self._on_dropped(size)
        return accepted

    def flush(self, timeout_s: float) -> bool:
        """Wait until every job submitted before this call has been handed on (or failed).
        False on timeout. Feedback waits for it, so that a label reaches the shadow row too."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._settled >= target, timeout=timeout_s)

    def close(self, timeout_s: float) -> int:
        """Score what is queued for up to ``timeout_s``, then stop. Returns how many records were
        left unscored (counted as dropped)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        with self._cond:
            left = self._waiting
            self._settled += len(self._jobs)
            self._jobs.clear()
            self._waiting = 0
            self._cond.notify_all()
        if left:
            self._on_dropped(left)
        return left

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs) or self._stopping)
                if not self._stopping:
                    self._cond.wait_for(
                        lambda: self._stopping or self._waiting >= MAX_RECORDS_PER_CALL,
                        timeout=LINGER_S,
                    )
                if not self._jobs:
                    return  # stopping, and everything is scored
                batch, size = [], 0
                while self._jobs and (not batch or size < MAX_RECORDS_PER_CALL):
                    job = self._jobs.popleft()
                    batch.append(job)
                    size += len(job.records)
                self._waiting -= size
            try:
                self.score(batch)
            except Exception:  # the thread must outlive any surprise: a lost shadow, not a hang
                log.exception("Unexpected error while shadow-scoring %d requests.", len(batch))
            with self._cond:
                self._settled += len(batch)
                self._cond.notify_all()

    def score(self, batch: Sequence[ShadowJob]) -> None:
        """Score a batch of jobs now, on this thread (the queue's thread calls it)."""
        accepted: list[tuple[ShadowJob, list[dict[str, Any]]]] = []
        for job in batch:
            try:
                accepted.append((job, job.candidate.schema.validate(job.records)))
            except ValidationError as error:
                self._on_requests(job.candidate.version, False, 1)
                self._failed(job.candidate.version, INVALID, len(job.records), error)
        for _, group in itertools.groupby(accepted, key=lambda pair: id(pair[0].candidate)):
            self._score_group(list(group))

    def _score_group(self, group: list[tuple[ShadowJob, list[dict[str, Any]]]]) -> None:
        candidate = group[0][0].candidate
        started = time.perf_counter()
        try:
            # The candidate applies the transforms its own version declares.
            scores = candidate.score([c for _, c in group])
        except Exception as error:
            self._on_requests(candidate.version, False, len(group))
            self._failed(candidate.version, ERROR, sum(len(c) for _, c in group), error)
            return
        self._on_scoring(candidate.version, time.perf_counter() - started)
        self._on_requests(candidate.version, True, len(group))
        for (job, clean), result in zip(group, scores, strict=True):
            self._on_scored(ShadowResult(job, clean, result))

    def _failed(self, version: str, reason: str, records: int, error: Exception) -> None:
        self._on_failed(reason, records)
        if (version, reason) in self._reported:
            return
        self._reported.add((version, reason))
        what = "rejected records" if reason == INVALID else "failed scoring records"
        log.warning(
            "The shadow candidate v%s %s the champion answered (counted in "
            "serving_shadow_failed_total{reason=%r}; said once per version): %s",
            version,
            what,
            reason,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
        )

"""Which version answers a request during a rollout: never the candidate in shadow; in a canary,
its share, the same version for the same applicant in every process."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys

from platform_core.rollout import SHADOW, Plan
from serving.rollout import LiveRollout, sticky_bucket

KEYS = [f"applicant-{i}" for i in range(2_000)]


class _Candidate:
    version = "7"


def _live(plan: Plan) -> LiveRollout:
    return LiveRollout(_Candidate(), plan)  # pyright: ignore[reportArgumentType]


def _within_binomial_bound(hits: int, n: int, share: float) -> bool:
    """Within 4.5 standard deviations: a false failure about once in 150,000 runs."""
    return abs(hits - n * share) <= 4.5 * math.sqrt(n * share * (1 - share))


def test_a_shadow_candidate_never_answers() -> None:
    live = _live(Plan(SHADOW))
    assert not any(live.answers(key) for key in [*KEYS, None])


def test_a_canary_answers_its_share_of_requests_without_a_key() -> None:
    draw = random.Random(5).random
    live = _live(Plan.canary(20))
    hits = sum(live.answers(None, draw=draw) for _ in range(10_000))
    assert _within_binomial_bound(hits, 10_000, 0.2), hits


def test_a_canary_answers_its_share_of_applicants() -> None:
    live = _live(Plan.canary(20))
    hits = sum(live.answers(key) for key in KEYS)
    assert _within_binomial_bound(hits, len(KEYS), 0.2), hits


def test_an_applicant_gets_the_same_answer_every_time() -> None:
    live = _live(Plan.canary(50))
    first = [live.answers(key) for key in KEYS]
    assert [live.answers(key) for key in KEYS] == first


def test_widening_a_canary_keeps_every_applicant_it_had() -> None:
    narrow, wide = _live(Plan.canary(10)), _live(Plan.canary(30))
    assert all(wide.answers(key) for key in KEYS if narrow.answers(key))


def test_a_full_canary_answers_everything() -> None:
    live = _live(Plan.canary(100))
    assert all(live.answers(key) for key in [*KEYS, None])


def test_buckets_are_the_same_in_another_process() -> None:
    """Python's own hash() changes per process: a second replica would route differently."""
    script = (
        "from serving.rollout import sticky_bucket\n"
        "print(','.join(str(sticky_bucket('7', f'applicant-{i}')) for i in range(50)))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    here = ",".join(str(sticky_bucket("7", f"applicant-{i}")) for i in range(50))
    assert other.stdout.strip() == here

"""platform_core.waiting.poll: the one way the platform waits for something to become true."""

from __future__ import annotations

import time

import pytest

from platform_core.waiting import TimedOut, poll


def test_the_first_truthy_answer_is_returned() -> None:
    answers = iter([None, 0, "", "ready"])
    assert poll(lambda: next(answers), timeout_s=5, every_s=0.01) == "ready"


def test_a_tolerated_error_counts_as_not_yet_and_is_quoted_on_timeout() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(TimedOut, match=r"waiting for serving .*nobody listens") as caught:
        poll(refused, timeout_s=0.2, every_s=0.05, what="serving")
    assert isinstance(caught.value.last_error, ConnectionRefusedError)


def test_an_error_it_does_not_tolerate_ends_the_wait_at_once() -> None:
    calls = []

    def dies() -> bool:
        calls.append(1)
        raise RuntimeError("the process exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited"):
        poll(dies, timeout_s=30, every_s=0.05, tolerate=(ConnectionError,))
    assert len(calls) == 1 and time.monotonic() - started < 1


def test_the_condition_is_asked_once_more_at_the_deadline() -> None:
    started = time.monotonic()
    calls = []

    def late() -> bool:
        calls.append(time.monotonic() - started)
        return calls[-1] >= 0.3

    assert poll(late, timeout_s=0.3, every_s=10)
    assert len(calls) == 2  # once at once, once at the deadline: never a sleep past it

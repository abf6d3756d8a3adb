"""Waiting for something to become true, in one place: a poll with a deadline that says what it
waited for when it gives up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """A poll's deadline passed. ``last_error`` is the last exception the condition raised."""

    def __init__(self, what: str, timeout_s: float, last_error: Exception | None) -> None:
        detail = f" (last error: {last_error})" if last_error else ""
        super().__init__(f"Timed out after {timeout_s:.0f}s waiting for {what}{detail}.")
        self.what = what
        self.timeout_s = timeout_s
        self.last_error = last_error


def poll(
    condition: Callable[[], T],
    timeout_s: float,
    every_s: float = 0.5,
    what: str = "a condition",
    tolerate: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """Call ``condition()`` until it returns something truthy and return that. An exception of a
    ``tolerate`` type counts as "not yet" (a service may be restarting); any other propagates,
    which is how a condition stops the wait early (the process it waits for has exited).
    Raises :class:`TimedOut` once ``timeout_s`` has passed, after at least one call."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except tolerate as error:
            last_error = error
        else:
            if value:
                return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut(what, timeout_s, last_error)
        time.sleep(min(every_s, remaining))

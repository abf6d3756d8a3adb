"""A stop that lands while Python runs one of its own callbacks still stops the flow run.

A flow run's process stops on SIGTERM (the flows service stopping, a cancel): Prefect's handler
raises ``TerminationSignal`` and its engine ends the run. Python runs a signal handler at the
next bytecode, which can be inside a callback Python calls for itself: a weak reference's, such
as the one import runs for each module lock, or a ``__del__``. An exception cannot leave such a
callback: Python prints "Exception ignored in ..." with a traceback into the service's log and
carries on, and the run works on until the flows service kills it.

:func:`deliver_swallowed_stops` trips the signal again instead, so the handler runs once the
callback has returned and the stop goes the way it always does.
"""

from __future__ import annotations

import _thread
import signal
import sys
from typing import Any

from prefect.exceptions import TerminationSignal


def deliver_swallowed_stops() -> None:
    """Have a ``TerminationSignal`` raised inside a callback raised again after it (idempotent)."""
    previous = sys.unraisablehook
    if getattr(previous, "delivers_swallowed_stops", False):
        return

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, TerminationSignal):
            # Tripped by another thread once this hook is done: tripped here, the handler would
            # run at this hook's next bytecode, inside the callback's machinery again.
            done = _thread.allocate_lock()
            done.acquire()
            _thread.start_new_thread(_trip_when_released, (done, unraisable.exc_value.signal))
            done.release()
            return
        previous(unraisable)

    hook.delivers_swallowed_stops = True  # pyright: ignore[reportFunctionMemberAccess]
    sys.unraisablehook = hook


def _trip_when_released(done: Any, signum: int) -> None:
    with done:
        _thread.interrupt_main(signal.Signals(signum))

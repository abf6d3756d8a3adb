"""A flow run's process stops when told to, even when the stop lands inside a callback.

Python runs a signal handler at the next bytecode; when that is inside a callback Python calls
itself (a weak reference's, as every import's module locks have), the ``TerminationSignal``
Prefect's handler raises is printed as "Exception ignored" and the run carries on. A restart of
the flows service during a run's imports did this in CI."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# The flow engine's own SIGTERM handler, then a stop that lands inside a weak reference's
# callback; the run's code would have gone on for the sleep.
RUN = textwrap.dedent(
    """
    import os, signal, sys, time, weakref
    from prefect.exceptions import TerminationSignal
    from prefect.utilities.engine import capture_sigterm
    if sys.argv[1] == "delivered":
        import pipelines.flows  # what a flow run's process imports to run a flow
    class Resource:
        pass
    resource = Resource()
    def stop_now(_ref):
        os.kill(os.getpid(), signal.SIGTERM)
    watch = weakref.ref(resource, stop_now)
    with capture_sigterm():
        try:
            del resource
            time.sleep(1)
        except TerminationSignal:
            print("stopped")
            sys.exit(0)
    print("carried on")
    """
)


@pytest.mark.parametrize(
    ("importing", "said", "printed"),
    [("delivered", "stopped", ""), ("plain", "carried on", "Exception ignored")],
)
def test_a_stop_inside_a_callback_stops_the_run(importing: str, said: str, printed: str) -> None:
    # "plain" is Python and Prefect alone: the defect this module's hook exists for.
    ran = subprocess.run(
        [sys.executable, "-c", RUN, importing], capture_output=True, text=True, timeout=60
    )
    assert ran.stdout.strip() == said, (ran.stdout, ran.stderr)
    assert printed in ran.stderr
    if not printed:
        assert "Traceback" not in ran.stderr, ran.stderr

"""Ends the serving worker when the process that started it is gone.

`bentoml serve` (the process supervisord runs) starts the worker that answers requests, in a
process group of its own. If `bentoml serve` is killed outright (SIGKILL, the OOM killer), nothing
stops the worker: it keeps the port, answers without supervision, outlives `mlops-lab down`,
and its queued prediction-log rows are never written when it dies later. So the worker watches
its parent and, once it changes, stops itself the graceful way (SIGTERM: requests in flight
finish, queued rows are written) while supervisord starts serving again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)


def exit_with_parent(interval_s: float = 0.5) -> threading.Thread:
    """Watch the parent process from a daemon thread; SIGTERM this process when it is gone."""
    parent = os.getppid()

    def watch() -> None:
        # An orphan is re-parented (to init or a subreaper), so a changed parent pid is a
        # dead parent. Polling, not PR_SET_PDEATHSIG: that fires when the *thread* that
        # started this process exits, which would stop a healthy worker.
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                log.warning(
                    "The process that started this serving worker (pid %d) is gone; shutting "
                    "down gracefully so the restarted service takes over.",
                    parent,
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread

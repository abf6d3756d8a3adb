"""A serving worker whose parent (`bentoml serve`) is killed stops itself, gracefully.

Found by the kill test under load: the worker outlived a SIGKILLed `bentoml serve`, kept the port
and escaped supervisord. This is the same check in a second, without a platform.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlops_lab.runtime.kube.host_processes import alive
from platform_core.settings import REPO_ROOT
from tests.support import wait_for

# The worker: arms the lifeline, then waits; its SIGTERM handler records the graceful stop.
WORKER = """
import pathlib, signal, sys, time
from serving import lifeline
stopped = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: (stopped.write_text("SIGTERM"), sys.exit(0)))
lifeline.exit_with_parent(interval_s=0.1)
print("armed", flush=True)
time.sleep(60)
"""
# Its parent, like `bentoml serve`: starts the worker in a session of its own, then waits.
PARENT = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(60)
"""


def test_the_worker_stops_gracefully_once_its_parent_is_killed(tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, WORKER, str(stopped)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    try:
        # The worker shares its parent's stdout. Armed before the parent dies, or the worker
        # would take its new parent for the first one.
        assert parent.stdout.readline().strip() == "armed"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: stopped.exists(), 10, what="the orphaned worker to stop itself")
        assert stopped.read_text() == "SIGTERM"
        wait_for(lambda: not alive(worker), 10, what="the worker to exit")
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()

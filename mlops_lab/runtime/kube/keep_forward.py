"""Keep one `kubectl port-forward` running: start it again whenever it exits.

kubectl (1.23 and later) ends a port-forward on the first connection the pod refuses: a
container restarting, a pod replaced by a rollout, a moment of load on a small node. Without a
keeper every later request from this machine is refused until something calls `status` or
`up`; a training run in progress fails. The keeper is what `forward.ensure` records and `down`
stops: SIGTERM ends the forward it runs, then the keeper.

    python -m mlops_lab.runtime.kube.keep_forward kubectl port-forward svc/NAME HOST:PORT ...

Restarts come quickly at first (the HTTP clients in the platform retry a refused connection for
some seconds), then back off up to ``MAX_WAIT_S`` while the forward keeps failing at once (a
cluster that is gone), and come quickly again after a forward that ran for a while.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

FIRST_WAIT_S = 0.5
MAX_WAIT_S = 30.0
RAN_WELL_S = 60.0  # a forward that lasted this long failed for a new reason: restart quickly


def _say(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} keep-forward: {message}", flush=True)


def keep(argv: list[str], stopping: threading.Event) -> None:
    """Run ``argv`` again each time it exits, until ``stopping`` is set."""
    wait_s = FIRST_WAIT_S
    while not stopping.is_set():
        started = time.monotonic()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        while child.poll() is None:
            if stopping.wait(0.2):
                child.terminate()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                return
        lasted = time.monotonic() - started
        wait_s = FIRST_WAIT_S if lasted >= RAN_WELL_S else wait_s
        _say(f"the forward exited ({child.returncode}) after {lasted:.0f}s; again in {wait_s}s")
        if stopping.wait(wait_s):
            return
        wait_s = min(wait_s * 2, MAX_WAIT_S)


def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        print("usage: python -m mlops_lab.runtime.kube.keep_forward COMMAND [ARG ...]")
        return 2
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda *_: stopping.set())
    keep(argv, stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A process that holds a lock until told to let go: it stands for a long mlops-lab command (an
`up` starting services, a `lab start` injecting its fault) in tests of what a second command does
meanwhile.

Run through a link named ``mlops-lab``, so it records itself as the command its words say. It
takes the lock in ``HOLD_LOCK``, prints ``held``, and at a line on stdin does what
``HOLD_THEN_START`` asks (marks that lab in progress, as a `lab start` would at its end) and exits,
which lets go of the lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HELD = "held"


@contextmanager
def holding(
    lock: Path, words: list[str], env: dict[str, str] | None = None, then_start: str = ""
) -> Iterator[subprocess.Popen[str]]:
    """The holder process, once it holds ``lock``; `mlops-lab WORDS` in its lock file. Write a
    line to its stdin to let go; it is killed on the way out if it still runs."""
    link = Path(tempfile.mkdtemp(prefix="lock-holder-")) / "mlops-lab"
    link.symlink_to(Path(__file__).resolve())
    extra = {"HOLD_LOCK": str(lock), "HOLD_THEN_START": then_start}
    process = subprocess.Popen(
        [sys.executable, str(link), *words],
        env={**(env or os.environ), **extra},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == HELD, "the holder did not take the lock"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        shutil.rmtree(link.parent)


def release(process: subprocess.Popen[str]) -> None:
    """Tell the holder to finish (and so let go); returns once it has exited."""
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    process.wait(timeout=120)


def _main() -> None:
    # Imported before the lock is taken: on a loaded machine these imports took over 30 s, and
    # `release` waits for the holder to finish once told to.
    from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
    from platform_core import locks
    from tests.support import settings_without_dotenv

    with locks.hold(Path(os.environ["HOLD_LOCK"]), say=print, timeout_s=0):
        print(HELD, flush=True)
        sys.stdin.readline()
        lab_id = os.environ.get("HOLD_THEN_START")
        if lab_id:
            store = ProgressStore(settings_without_dotenv().learner_home)
            store.save(lab_id, LabProgress(status=IN_PROGRESS, started_at=time.time()))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    _main()

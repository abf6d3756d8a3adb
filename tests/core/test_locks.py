"""The lock that keeps two mlops-lab commands from colliding, against real processes: a second
command waits and says for whom, gives up naming the holder and the fix, takes at once the lock
of a holder that was killed, and re-takes its own without waiting; the platform's lock outlives
`clean`, and no program a command starts holds a lock on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from platform_core import locks
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.lock_holder import holding, release
from tests.support import make_settings, remove_platform_files

# Another process trying the lock once: exit 0 when it got it, 1 when it is held.
_TRY = (
    "import sys; from pathlib import Path; from platform_core import locks; "
    "from platform_core.errors import PlatformError\n"
    "try:\n"
    "    with locks.hold(Path(sys.argv[1]), say=print, timeout_s=0): pass\n"
    "except PlatformError: sys.exit(1)\n"
)


def _free_for_others(lock: Path) -> bool:
    return subprocess.run([sys.executable, "-c", _TRY, str(lock)], check=False).returncode == 0


def test_a_second_command_waits_names_the_holder_and_goes_on_once_it_lets_go(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock"
    said: list[str] = []
    released = threading.Event()
    with holding(lock, ["up"]) as holder:

        def let_go() -> None:
            released.set()
            release(holder)

        threading.Timer(1.0, let_go).start()
        with locks.hold(lock, said.append, timeout_s=30):
            assert released.is_set(), "taken while the holder still held it"
    assert said == [f"Waiting for `mlops-lab up` (pid {holder.pid}) to finish…"]


def test_a_lock_held_too_long_is_an_error_naming_the_holder_and_the_fix(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with holding(lock, ["lab", "start", "02"]) as holder:
        started = time.monotonic()
        with pytest.raises(PlatformError) as raised, locks.hold(lock, print, timeout_s=1):
            pass
        assert time.monotonic() - started < 10
    message = str(raised.value)
    assert f"`mlops-lab lab start 02` (pid {holder.pid}) still holds {lock}" in message
    assert "nothing was done" in message
    assert f"kill {holder.pid}" in message


def test_the_lock_of_a_killed_holder_is_taken_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    said: list[str] = []
    with holding(lock, ["up"]) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with locks.hold(lock, said.append, timeout_s=0):
            pass
    assert said == []


def test_a_process_takes_its_own_lock_again_and_holds_it_until_the_outer_hold_ends(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock"
    with locks.hold(lock, print, timeout_s=0):
        with locks.hold(lock, print, timeout_s=0):
            pass
        assert not _free_for_others(lock)
    assert _free_for_others(lock)


def test_the_platform_lock_stays_held_while_clean_deletes_the_data_dir() -> None:
    settings: Settings = make_settings()
    settings.paths.ensure()
    try:
        with locks.platform_lock(settings, print, timeout_s=0):
            shutil.rmtree(settings.home)
            assert not _free_for_others(locks.platform_lock_path(settings))
        assert not settings.home.exists()
    finally:
        locks.platform_lock_path(settings).unlink(missing_ok=True)
        remove_platform_files(settings)


def test_a_program_started_under_the_lock_does_not_hold_it_on(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with locks.hold(lock, print, timeout_s=0):
        # As supervisord is started: it outlives the command, and must not keep its lock.
        program = subprocess.Popen(["sleep", "60"], close_fds=False)
    try:
        assert _free_for_others(lock)
    finally:
        program.kill()
        program.wait()

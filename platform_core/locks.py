"""One command at a time where two would collide: the platform's lifecycle (`up`, `down`,
`clean`, `restart`) and the learner's lab and on-call state.

Without it two `up`s both see no supervisord and both start one (the second deletes the first's
socket, so the first is orphaned with the services), and two `lab start`s both see no lab in
progress and both inject a fault. With it the second command says what it waits for, and goes on
once the first is done, where it sees what the first did.

``flock(2)`` from the standard library rather than a locking package (filelock, portalocker): the
kernel lets go of the lock when its holder exits, however it exits (``kill -9`` included), so
there is no stale lock to detect or break, and one call is all the platform needs. The file
records who holds it (PID and command line), for the one waiting to say so.

Within one process the lock is re-entrant: a lab that holds the learner's lock restarts services
(the platform's lock), and `clean` calls `down`. The order is always learner, then platform:
platform commands never take the learner's lock, so the two cannot deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from platform_core.errors import PlatformError
from platform_core.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

# As long as the slowest holder may take: a first `up --runtime kind` builds images and a cluster.
WAIT_S = 20 * 60
_POLL_S = 0.2
# How long to wait for a holder to write its name before saying "another command".
_NAMELESS_S = 1.0


@dataclass(frozen=True)
class Holder:
    """The process holding a lock, as it wrote itself into the lock file."""

    pid: int
    command: str

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid})"


def platform_lock_path(settings: Settings) -> Path:
    """Beside the data dir, not in it: `clean` deletes the data dir while it holds the lock, and a
    command waiting on a lock file in there would go on with a deleted file nobody else sees."""
    home = settings.home.absolute()
    return home.with_name(f".{home.name.lstrip('.')}.lock")


def learner_lock_path(settings: Settings) -> Path:
    """In the learner's folder, beside the progress and the on-call round it guards."""
    return settings.learner_home.absolute() / ".lock"


def platform_lock(
    settings: Settings, say: Callable[[str], None], timeout_s: float = WAIT_S
) -> contextlib.AbstractContextManager[None]:
    """Held by every command that starts or stops the platform's processes."""
    return hold(platform_lock_path(settings), say, timeout_s)


def learner_lock(
    settings: Settings, say: Callable[[str], None], timeout_s: float = WAIT_S
) -> contextlib.AbstractContextManager[None]:
    """Held by every command that changes a lab's progress or the on-call round."""
    return hold(learner_lock_path(settings), say, timeout_s)


Lock = Callable[[Settings, Callable[[str], None]], contextlib.AbstractContextManager[None]]


class _Attended(Protocol):
    """What a locked method's object has: the settings that say where the lock is, and the
    console that says what it waits for."""

    @property
    def settings(self) -> Settings: ...

    @property
    def console(self) -> Console: ...


_S = TypeVar("_S", bound=_Attended)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def locked_by(
    lock: Lock,
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """A decorator: the method runs holding ``lock``, and says on its object's console what it
    waits for."""

    def decorate(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def locked(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            def say(text: str) -> None:
                self.console.print(text, highlight=False)

            with lock(self.settings, say):
                return method(self, *args, **kwargs)

        return locked

    return decorate


# On the runtimes' methods that start or stop processes: every caller (the CLI, `make up`, the lab
# engine and the labs) goes through those.
platform_locked = locked_by(platform_lock)
# On the lab engine's and the on-call round's methods that change the learner's state.
learner_locked = locked_by(learner_lock)


class _Held:
    """A lock this process holds: the open file whose flock it is, and how deeply it is held."""

    def __init__(self) -> None:
        # Threads of one process share the flock, so they take turns here first.
        self.turn = threading.RLock()
        self.depth = 0
        self.fd = -1


_held: dict[Path, _Held] = {}
_registry = threading.Lock()


@contextlib.contextmanager
def hold(path: Path, say: Callable[[str], None], timeout_s: float = WAIT_S) -> Iterator[None]:
    """Hold the lock in ``path`` for the block; wait (saying once for whom) while another process
    holds it, at most ``timeout_s``, then raise a :class:`PlatformError` that names the holder."""
    path = path.absolute()
    with _registry:
        held = _held.setdefault(path, _Held())
    with held.turn:
        if held.depth == 0:
            held.fd = _acquire(path, say, timeout_s)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd >= 0:  # -1 in a forked child: not its lock
                fd, held.fd = held.fd, -1
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                os.close(fd)  # closing the last descriptor of the open file releases the flock


def _acquire(path: Path, say: Callable[[str], None], timeout_s: float) -> int:
    started = time.monotonic()
    told = False
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read_holder(fd)
            os.close(fd)
            waited = time.monotonic() - started
            if waited >= timeout_s:
                raise _timed_out(path, who, timeout_s) from None
            if not told and (who is not None or waited >= _NAMELESS_S):
                what = who.describe() if who else "another mlops-lab command"
                say(f"Waiting for {what} to finish…")
                told = True
            time.sleep(_POLL_S)
            continue
        if _is_current(fd, path):
            _write_holder(fd)
            return fd
        # The file was deleted or replaced while this process waited on it: a lock on it would
        # exclude nobody who opens the path now, so take the one at the path.
        os.close(fd)


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: a program this command starts (supervisord) must not hold the lock on.
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise PlatformError(
            f"Cannot open the lock file {path}, which keeps two mlops-lab commands from "
            f"colliding: {error.strerror}.",
            hint=f"Make {path.parent} writable for you, or point MLOPS_LAB_HOME (the lock goes "
            "beside it) or MLOPS_LAB_LEARNER_HOME at a folder that is.",
        ) from None


def _is_current(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _write_holder(fd: int) -> None:
    record = json.dumps({"pid": os.getpid(), "command": _command(), "since": time.time()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode(), 0)


def _read_holder(fd: int) -> Holder | None:
    try:
        record = json.loads(os.pread(fd, 4096, 0))
        return Holder(int(record["pid"]), str(record["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet (it has just taken the lock), or not by this version


def _command() -> str:
    """This process's command line as the user typed it: `mlops-lab up`, not the script's path."""
    argv = sys.argv or ["python"]
    words = [Path(argv[0]).name, *argv[1:]]
    text = shlex.join(words)
    return text if len(text) <= 200 else text[:199] + "…"


def _timed_out(path: Path, who: Holder | None, timeout_s: float) -> PlatformError:
    minutes = f"{timeout_s / 60:.0f} min" if timeout_s >= 60 else f"{timeout_s:.0f}s"
    if who is None:
        return PlatformError(
            f"Another mlops-lab command still holds {path} after {minutes} of waiting; nothing "
            "was done.",
            hint=f"`fuser -v {path}` shows which process it is: wait for it to finish, or stop it "
            "if it hangs, then run this command again.",
        )
    return PlatformError(
        f"{who.describe()} still holds {path} after {minutes} of waiting; nothing was done.",
        hint=f"Wait for it to finish, or stop it if it hangs (`kill {who.pid}`; a command that "
        "exits lets go of the lock at once), then run this command again.",
    )


def _forget_in_child() -> None:
    """A forked child shares the parent's open lock files: it must neither hold them on after
    the parent lets go, nor think it holds them."""
    global _registry
    for held in _held.values():
        if held.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(held.fd)
            held.fd = -1
    _held.clear()
    _registry = threading.Lock()  # another thread may have held it when the parent forked


os.register_at_fork(after_in_child=_forget_in_child)

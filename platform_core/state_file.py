"""State files: the small JSON documents kept between runs (the incident book, lab progress, the
on-call round, the runtime record, processes started on the host, interview boxes).

Written atomically: a temp file in the same folder, flushed to disk, renamed over the old one,
so a crash or a full disk mid-write leaves the old file whole and no temp file behind. Private
to the user (0600), as ``mkstemp`` creates it.

Read defensively: a file that cannot be read as what it should be (empty, truncated, not text,
another JSON type) is moved aside to ``<name>.corrupt-<time>`` and the caller goes on as if
there were none. A lost cooldown or a lab to start again is better than a receiver in a crash
loop or a command that refuses to run (`clean` included). Where only some entries of a file are
bad, the caller keeps the good ones and :func:`copy_aside` keeps the file as it was.

Each time, a warning on this module's logger names the file and where it went: services log it,
the command line prints it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

log = logging.getLogger(__name__)

T = TypeVar("T", dict, list)
E = TypeVar("E")
K = TypeVar("K")

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Replace ``path`` with ``data`` as JSON, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=indent)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, expect: type[T], what: str, hint: str = "") -> T | None:
    """The document in ``path`` if it is a JSON ``expect`` (dict or list); None when there is no
    file, or when it could not be read and was set aside (see :func:`set_aside`)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        set_aside(path, what, f"it cannot be opened ({error.strerror})", hint)
        return None
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        problem = "it is not text"
    except (ValueError, RecursionError) as error:
        problem = "it is empty" if not raw.strip() else f"it is not valid JSON ({error})"
    else:
        if isinstance(document, expect):
            return document
        problem = f"it holds {_json_type(document)} where {_json_type(expect())} belongs"
    set_aside(path, what, problem, hint)
    return None


def read_entries(
    entries: Mapping[K, Any], read: Callable[[Any], E]
) -> tuple[dict[K, E], dict[K, str]]:
    """Each entry as ``read`` makes it, and for each it refused (raising ValueError, as a pydantic
    validation does) why: one bad entry must not cost the others."""
    good: dict[K, E] = {}
    bad: dict[K, str] = {}
    for key, entry in entries.items():
        try:
            good[key] = read(entry)
        except ValidationError as error:
            bad[key] = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in error.errors())
        except ValueError as error:
            bad[key] = str(error)
    return good, bad


def read_section(
    document: Mapping[str, Any], key: str, noun: str, read: Callable[[Any], E]
) -> tuple[dict[Any, E], list[str]]:
    """The entries of a state document's ``key`` object, each as ``read`` makes it, and what
    could not be read, in words (``noun`` names one entry): the whole section when it is not an
    object, else each refused entry and why."""
    section = document.get(key, {})
    if not isinstance(section, dict):
        return {}, [f"every {noun} (`{key}` is not an object)"]
    good, refused = read_entries(section, read)
    return good, [f"{noun} {name} ({why})" for name, why in refused.items()]


def set_aside(path: Path, what: str, problem: str, hint: str = "") -> Path | None:
    """Move an unreadable state file out of the way, keeping it for a look, and say so. Returns
    where it went (None if it could not be moved: the next write replaces it)."""
    aside = _aside_path(path)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None  # another process set it aside first
    except OSError as error:
        log.warning(
            "%s (%s) could not be read: %s. It could not be moved aside either (%s); going on "
            "without it.%s",
            path,
            what,
            problem,
            error.strerror,
            f" {hint}" if hint else "",
        )
        return None
    log.warning(
        "%s (%s) could not be read: %s. Moved it to %s and went on without it.%s",
        path,
        what,
        problem,
        aside.name,
        f" {hint}" if hint else "",
    )
    return aside


def copy_aside(path: Path, what: str, problem: str, hint: str = "") -> Path | None:
    """Some entries of ``path`` could not be read and are left out: keep a copy of the file as
    it was beside it, and say so. The caller then writes the good entries back."""
    aside = _aside_path(path)
    try:
        shutil.copy(path, aside)  # with its mode: as private as the file
    except OSError:
        aside = None
    kept = f" The file as it was is kept as {aside.name}." if aside else ""
    log.warning(
        "%s (%s): left out what could not be read (%s) and kept the rest.%s%s",
        path,
        what,
        problem,
        kept,
        f" {hint}" if hint else "",
    )
    return aside


def _aside_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    count = 1
    while aside.exists():  # twice in one second: keep both
        count += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{count}")
    return aside


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(map(str, loc)) or "the entry"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES.items():
        if type(value) is kind:
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__

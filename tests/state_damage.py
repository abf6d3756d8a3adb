"""Ways a state file gets damaged (a full disk, a crash mid-write, a hand edit), for the tests
that check each state file survives them (platform_core.state_file)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

DAMAGE = {
    "empty": b"",
    "truncated": b'{"labs": {"02": {"status": "sol',
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x80",
    "null": b"null",
    "array": b"[]",
}

# Parametrize a test over every kind of damage: `@each_damage` then a `damage: bytes` argument.
each_damage = pytest.mark.parametrize("damage", list(DAMAGE.values()), ids=list(DAMAGE))


def set_aside(path: Path) -> list[Path]:
    """Where ``path`` was moved (or copied) as unreadable: ``<name>.corrupt-<time>``."""
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def warnings(caplog: pytest.LogCaptureFixture) -> str:
    """What the state files warned about (the CLI prints it, services log it)."""
    return "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name == "platform_core.state_file" and r.levelno >= logging.WARNING
    )

"""State files are written whole or not at all, private, and read defensively: a damaged one is
set aside under a name that says so, with a warning naming both."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from platform_core import state_file
from tests.state_damage import each_damage, set_aside, warnings


def test_a_write_replaces_the_file_whole_private_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "book.json"
    state_file.write_json(path, {"a": 1})
    state_file.write_json(path, {"b": [2]})

    assert json.loads(path.read_text()) == {"b": [2]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["book.json"]


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    state_file.write_json(path, {"a": 1})

    # json.dump has written `{"a": 2, "b": ` when it meets what it cannot encode.
    with pytest.raises(TypeError):
        state_file.write_json(path, {"a": 2, "b": object()})

    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["book.json"]


@each_damage
def test_a_damaged_file_is_set_aside_and_named(
    tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "book.json"
    path.write_bytes(damage)

    assert state_file.read_json(path, dict, "the book") is None

    [aside] = set_aside(path)
    assert aside.read_bytes() == damage and not path.exists()
    assert f"{path} (the book) could not be read" in warnings(caplog)
    assert aside.name in warnings(caplog)


def test_a_file_of_another_type_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "book.json"
    path.write_text("[1, 2]")

    assert state_file.read_json(path, dict, "the book") is None
    assert "it holds an array where an object belongs" in warnings(caplog)


def test_a_missing_file_reads_as_none_and_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert state_file.read_json(tmp_path / "book.json", dict, "the book") is None
    assert warnings(caplog) == ""


def test_entries_a_reader_refuses_are_left_out_with_the_reason(tmp_path: Path) -> None:
    def read(entry: object) -> int:
        if not isinstance(entry, int):
            raise ValueError(f"not a count: {entry!r}")
        return entry

    good, bad = state_file.read_entries({"a": 1, "b": "two", "c": 3}, read)

    assert good == {"a": 1, "c": 3}
    assert bad == {"b": "not a count: 'two'"}

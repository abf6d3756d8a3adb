"""scripts/ci/volume_reclaimer.py empties Released volumes of the CI node, and nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from platform_core.settings import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "volume_reclaimer", REPO_ROOT / "scripts/ci/volume_reclaimer.py"
)
assert _spec is not None and _spec.loader is not None
reclaimer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reclaimer)


def _pv(name: str, phase: str, path: Path | None) -> dict:
    spec = {"local": {"path": str(path)}} if path is not None else {"hostPath": {"path": "/x"}}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def test_only_released_local_volumes_inside_the_volumes_dir_are_picked(tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    volumes = [
        _pv("released", "Released", root / "pv0"),
        _pv("bound", "Bound", root / "pv1"),
        _pv("available", "Available", root / "pv2"),
        _pv("elsewhere", "Released", tmp_path / "other" / "pv3"),
        _pv("escaping", "Released", root / ".." / "pv4"),
        _pv("nested", "Released", root / "pv5" / "deeper"),
        _pv("not-local", "Released", None),
    ]
    assert reclaimer.released(volumes, root) == [("released", (root / "pv0").resolve())]


def test_emptying_keeps_the_directory_writable_for_any_pod(tmp_path: Path) -> None:
    volume = tmp_path / "pv0"
    (volume / "pgdata" / "base").mkdir(parents=True)
    (volume / "pgdata" / "PG_VERSION").write_text("15\n")
    (volume / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("not ours")
    volume.chmod(0o2770)
    reclaimer.empty(volume)
    assert list(volume.iterdir()) == []
    assert volume.stat().st_mode & 0o7777 == 0o777
    assert (tmp_path / "outside" / "keep").exists()  # a link is removed, never followed

"""scripts/get_uv.py, which gets uv on a machine without pip: the pinned hashes are enforced and
every machine a learner may have has a wheel pinned. The real download is proven by CI's
fresh-machine job (scripts/ci/fresh-machine.sh)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

from platform_core.settings import REPO_ROOT

_spec = importlib.util.spec_from_file_location("get_uv", REPO_ROOT / "scripts/get_uv.py")
assert _spec and _spec.loader
get_uv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(get_uv)


def test_a_file_that_does_not_match_its_pinned_hash_is_refused(tmp_path: Path) -> None:
    served = tmp_path / "served.whl"
    served.write_bytes(b"not the wheel that was pinned")
    with pytest.raises(get_uv.Refused, match="not the pinned"):
        get_uv.fetch(served.as_uri(), "0" * 64, tmp_path / "copy.whl")


def test_a_matching_file_is_kept(tmp_path: Path) -> None:
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr(f"uv-{get_uv.VERSION}.data/scripts/uv", "#!/bin/sh\n")
    served = tmp_path / "served.whl"
    served.write_bytes(body.getvalue())
    get_uv.fetch(served.as_uri(), hashlib.sha256(body.getvalue()).hexdigest(), tmp_path / "w.whl")
    assert (tmp_path / "w.whl").read_bytes() == body.getvalue()


@pytest.mark.parametrize(
    "machine",
    [("Linux", "x86_64", "glibc"), ("Linux", "aarch64", "glibc"), ("Darwin", "arm64", "")],
)
def test_the_usual_learner_machines_have_a_pinned_wheel_of_the_bootstrap_version(machine) -> None:
    filename, sha256 = get_uv.WHEELS[machine]
    assert filename.startswith(f"uv-{get_uv.VERSION}-") and len(sha256) == 64
    bootstrap = (REPO_ROOT / "scripts/bootstrap.sh").read_text()
    assert f'UV_VERSION="{get_uv.VERSION}"' in bootstrap


def test_this_machine_is_named_as_the_table_names_machines() -> None:
    system, machine, libc = get_uv.this_machine()
    assert system in ("Linux", "Darwin") and machine in ("x86_64", "aarch64", "arm64")
    assert (libc in ("glibc", "musl")) == (system == "Linux")

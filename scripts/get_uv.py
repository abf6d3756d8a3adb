"""Puts uv's own binary into a folder, from its wheel on the package index, with Python's standard
library only: no pip, no virtual environment, nothing written outside that folder.

Why not `pip install uv`: a stock Debian or Ubuntu has no pip, and with python3-pip installed PEP
668 refuses both the system and the `--user` install; a stock macOS has neither. The wheel is a
zip archive that holds the binary, so no installer is needed. Each wheel this script may take is
pinned by its SHA-256 below: a file that does not match is refused.

Usage: python3 scripts/get_uv.py DEST_DIR   (prints the binary's path; exit 1 with what to do)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import stat
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.9"
# (system, machine, libc) -> the wheel's file name and SHA-256, as the index lists them.
WHEELS = {
    ("Linux", "x86_64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    ("Linux", "x86_64", "musl"): (
        "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl",
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    ),
    ("Linux", "aarch64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("Linux", "aarch64", "musl"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("Darwin", "arm64", ""): (
        "uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
        "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    ),
    ("Darwin", "x86_64", ""): (
        "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
        "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    ),
}
# The index's JSON form of its simple API (PEP 691), which every index pip and uv use serves.
ACCEPT = "application/vnd.pypi.simple.v1+json"


class Refused(Exception):
    pass


def this_machine() -> tuple[str, str, str]:
    system, machine = platform.system(), platform.machine()
    machine = {"amd64": "x86_64", "arm64": "arm64" if system == "Darwin" else "aarch64"}.get(
        machine.lower(), machine
    )
    libc = ""
    if system == "Linux":
        libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    return system, machine, libc


def index_url() -> str:
    """The index the learner's tools use: uv's and pip's settings, else PyPI."""
    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(variable):
            return os.environ[variable].rstrip("/")
    return "https://pypi.org/simple"


def wheel_url(index: str, filename: str) -> str:
    request = urllib.request.Request(f"{index}/uv/", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as answer:
        listing = json.load(answer)
    for entry in listing.get("files", []):
        if entry.get("filename") == filename:
            return urllib.request.urljoin(f"{index}/uv/", entry["url"])
    raise Refused(f"{index} does not list {filename}")


def fetch(url: str, sha256: str, into: Path) -> None:
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=300) as answer, into.open("wb") as out:
        while chunk := answer.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise Refused(f"{url} has SHA-256 {digest.hexdigest()}, not the pinned {sha256}")


def install(dest: Path) -> Path:
    key = this_machine()
    if key not in WHEELS:
        raise Refused(f"no uv wheel is pinned here for {'/'.join(filter(None, key))}")
    filename, sha256 = WHEELS[key]
    binary = dest / "uv"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as scratch:
        wheel = Path(scratch) / filename
        fetch(wheel_url(index_url(), filename), sha256, wheel)
        with zipfile.ZipFile(wheel) as archive:
            member = f"uv-{VERSION}.data/scripts/uv"
            staged = Path(scratch) / "uv"
            with archive.open(member) as source, staged.open("wb") as target:
                shutil.copyfileobj(source, target)
        staged.chmod(staged.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        # Renamed into place last: an interrupted download never leaves a binary behind.
        staged.replace(binary)
    return binary


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        print(install(Path(sys.argv[1])))
    except (Refused, OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        print(f"Could not get uv {VERSION} from the package index: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

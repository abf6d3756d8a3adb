"""The platform image's wheelhouse: from uv.lock, the wheel of every package the image installs,
for the image's architecture, downloaded and checked against the lock's SHA-256.

The image (images/platform/Dockerfile) installs with
`pip install --no-index --find-links /wheels --require-hashes` in Debian bookworm, whose CPython
is 3.11.2 and whose glibc is 2.36, on the Docker engine's own architecture (x86_64, or aarch64 on
Apple Silicon and arm Linux). uv.lock already lists each locked package's wheels with their
hashes, so the wheelhouse holds exactly the files the tests ran with; no pip is needed on this
machine (a stock Debian, Ubuntu or macOS has none), and only the target's wheels are fetched.
Markers are judged for the image, not for this machine: `uv export` writes the lock's whole
closure with them, and the Dockerfile's pip installs the lines that match.
The export carries the lock's hashes, which pip checks again in the image: a wheel is picked only
if its hash is one of its line's, so the two checks agree on every file.

Usage: python images/wheelhouse.py REQUIREMENTS UV_LOCK ARCH DEST
  REQUIREMENTS: `uv export --frozen --no-dev --no-emit-project` (with hashes); ARCH: x86_64 or
  aarch64. Exit 1 naming every line without a hash, or every package without a wheel for ARCH.
Needs `packaging` (the project's venv has it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

PYTHON = "3.11.2"  # Debian bookworm's python3
GLIBC_MINOR = 36  # bookworm's glibc 2.36: runs every manylinux_2_N wheel with N <= 36
ARCHES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class Wheel:
    filename: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Pin:
    """One exported requirement: `name==version`, with the SHA-256 of every file the lock has."""

    name: str
    version: str
    hashes: frozenset[str]


def marker_environment(arch: str) -> dict[str, str]:
    """PEP 508 markers as the image's pip sees them."""
    return {
        "implementation_name": "cpython",
        "implementation_version": PYTHON,
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": PYTHON,
        "python_version": PYTHON.rsplit(".", 1)[0],
        "sys_platform": "linux",
    }


def image_tags(arch: str) -> list[tags.Tag]:
    """Every wheel tag the image's pip accepts, most specific first (pip's own order)."""
    oldest = 5 if arch == "x86_64" else 17  # manylinux1 was x86 only; aarch64 began at 2_17
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    platforms = []
    for minor in range(GLIBC_MINOR, oldest - 1, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy:
            platforms.append(f"{legacy[minor]}_{arch}")
    platforms.append(f"linux_{arch}")
    version = (3, 11)
    return [
        *tags.cpython_tags(version, abis=["cp311"], platforms=platforms),
        *tags.compatible_tags(version, interpreter="cp311", platforms=platforms),
    ]


def requirements(path: Path, arch: str) -> list[Pin]:
    """Each exported requirement the image installs on ``arch``. A requirement runs over several
    lines (`name==version ; marker \\`, then one `--hash=sha256:...` per line)."""
    environment = marker_environment(arch)
    wanted = []
    for line in path.read_text().replace("\\\n", " ").splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0].startswith("-"):
            continue
        hashes = frozenset(
            word.removeprefix("--hash=sha256:") for word in words if word.startswith("--hash=")
        )
        requirement = Requirement(" ".join(word for word in words if not word.startswith("--")))
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        (pin,) = requirement.specifier  # `uv export` pins each line with ==
        wanted.append(Pin(canonicalize_name(requirement.name), pin.version, hashes))
    return wanted


def locked_wheels(lock: Path) -> dict[tuple[str, str], list[Wheel]]:
    """(name, version) → the wheels uv.lock lists for it."""
    found: dict[tuple[str, str], list[Wheel]] = {}
    for package in tomllib.loads(lock.read_text()).get("package", []):
        key = (canonicalize_name(package["name"]), package.get("version", ""))
        found[key] = [
            Wheel(w["url"].rsplit("/", 1)[-1], w["url"], w["hash"].removeprefix("sha256:"))
            for w in package.get("wheels", [])
        ]
    return found


def pick(
    wanted: list[Pin], locked: dict[tuple[str, str], list[Wheel]], arch: str
) -> tuple[list[Wheel], list[str]]:
    """The best wheel of each wanted package for ``arch`` among those whose hash the export
    lists, and the packages that have none."""
    rank = {tag: i for i, tag in enumerate(image_tags(arch))}
    picks, missing = [], []
    for want in wanted:
        scored = []
        for wheel in locked.get((want.name, want.version), []):
            if wheel.sha256 not in want.hashes:
                continue
            _, _, _, wheel_tags = parse_wheel_filename(wheel.filename)
            best = min((rank[t] for t in wheel_tags if t in rank), default=None)
            if best is not None:
                scored.append((best, wheel))
        if scored:
            picks.append(min(scored, key=lambda pair: pair[0])[1])
        else:
            missing.append(f"{want.name}=={want.version}")
    return picks, missing


def cache_dir() -> Path:
    """Where downloaded wheels are kept between checkouts (by their hash, so a file there is
    only ever the one uv.lock names): MLOPS_LAB_WHEEL_CACHE, else the user's cache dir."""
    if os.environ.get("MLOPS_LAB_WHEEL_CACHE"):
        return Path(os.environ["MLOPS_LAB_WHEEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlops-lab" / "wheels"


def _matches(path: Path, sha256: str) -> bool:
    return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def fetch(wheel: Wheel, dest: Path) -> None:
    """Put ``wheel`` into ``dest``: already there, from the cache, or downloaded (and cached)."""
    target = dest / wheel.filename
    if _matches(target, wheel.sha256):
        return
    cached = cache_dir() / wheel.sha256 / wheel.filename
    if _matches(cached, wheel.sha256):
        shutil.copyfile(cached, target)
        return
    partial = target.with_name(target.name + ".part")
    hasher = hashlib.sha256()
    with urllib.request.urlopen(wheel.url, timeout=300) as answer, partial.open("wb") as out:
        while chunk := answer.read(1 << 20):
            hasher.update(chunk)
            out.write(chunk)
    digest = hasher.hexdigest()
    if digest != wheel.sha256:
        partial.unlink()
        raise ValueError(f"{wheel.url} has SHA-256 {digest}, uv.lock says {wheel.sha256}")
    partial.replace(target)
    with contextlib.suppress(OSError):  # a cache that cannot be written costs a download
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, cached.with_name(cached.name + ".part"))
        cached.with_name(cached.name + ".part").replace(cached)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[2] not in ARCHES:
        print((__doc__ or "").split("Usage: ", 1)[-1], file=sys.stderr)
        return 2
    requirements_file, lock, arch, dest = Path(argv[0]), Path(argv[1]), argv[2], Path(argv[3])
    wanted = requirements(requirements_file, arch)
    unhashed = [f"{want.name}=={want.version}" for want in wanted if not want.hashes]
    if unhashed:
        print(
            f"{requirements_file} has no hashes for {', '.join(unhashed)}: the image installs "
            "with pip --require-hashes; export without --no-hashes.",
            file=sys.stderr,
        )
        return 1
    picks, missing = pick(wanted, locked_wheels(lock), arch)
    if missing:
        print(
            f"uv.lock has no wheel for Linux {arch}, CPython 3.11, glibc <= 2.{GLIBC_MINOR} "
            f"(Debian bookworm) with a hash {requirements_file} lists, of: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    keep = {wheel.filename for wheel in picks}
    for stale in dest.glob("*.whl"):
        if stale.name not in keep:
            stale.unlink()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(fetch, wheel, dest) for wheel in picks]:
            future.result()
    print(f"{len(picks)} wheels for {arch} in {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

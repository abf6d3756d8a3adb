"""scripts/build-images.sh on the machines a learner has, without a Docker engine or a download: a
copy of the script runs in a scratch repository against stand-in docker, uv and python3
(tests/infra/standins/) and a small uv.lock whose wheels are local files. Then the real uv.lock:
every package the image installs has a wheel for both architectures the build targets, and a hash
in the export the image's pip checks them against."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from platform_core.settings import REPO_ROOT
from tests.infra.standins import Sandbox
from tests.support import uv_command

UV_VERSION = "0.13.9"  # scripts/bootstrap.sh's, where get_uv.py puts uv: .tools/uv-<version>/uv
# One binary package with a wheel per architecture, and one pure-Python package.
WHEELS = (
    "tiny-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "tiny-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "tiny-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "pure-2.0-py3-none-any.whl",
)
# A wheel's content is its name (see _lock), so its hash is known here. winonly has only an sdist.
SDIST = "winonly-3.0.tar.gz"


def _export(*requirements: str) -> str:
    """`uv export`'s format: each requirement, then the hash of every file the lock has of it."""
    text = ""
    for requirement in requirements:
        project, version = requirement.split(" ")[0].split("==")
        files = [f for f in (*WHEELS, SDIST) if f.startswith(f"{project}-{version}")]
        hashes = [hashlib.sha256(name.encode()).hexdigest() for name in files]
        text += requirement + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes) + "\n"
    return text


EXPORT = _export("tiny==1.0", "pure==2.0", "winonly==3.0 ; sys_platform == 'win32'")


def _wheelhouse_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheelhouse", REPO_ROOT / "images/wheelhouse.py")
    assert spec is not None and spec.loader is not None, "images/wheelhouse.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _lock(index: Path) -> str:
    """A uv.lock in uv's format whose wheels are files under ``index``."""
    packages: dict[tuple[str, str], list[str]] = {}
    for name in WHEELS:
        path = index / name
        path.write_bytes(name.encode())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entry = f'    {{ url = "{path.as_uri()}", hash = "sha256:{digest}", size = {len(name)} }},'
        project, version = name.split("-")[:2]
        packages.setdefault((project, version), []).append(entry)
    packages[("winonly", "3.0")] = []
    blocks = [
        f'[[package]]\nname = "{project}"\nversion = "{version}"\n'
        f'source = {{ registry = "https://pypi.org/simple" }}\nwheels = [\n'
        + "\n".join(entries)
        + "\n]\n"
        for (project, version), entries in packages.items()
    ]
    return 'version = 1\nrequires-python = "==3.11.*"\n\n' + "\n".join(blocks)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch checkout holding what build-images.sh reads, with a uv.lock of local wheels."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for script in ("build-images.sh", "bootstrap.sh"):
        shutil.copy2(REPO_ROOT / "scripts" / script, repo / "scripts" / script)
    shutil.copytree(REPO_ROOT / "images", repo / "images")
    (repo / "pyproject.toml").write_text('[project]\nname = "mlops-lab"\nversion = "0.1.0"\n')
    index = tmp_path / "index"
    index.mkdir()
    (repo / "uv.lock").write_text(_lock(index))
    # The venv bootstrap makes: its Python runs the wheel picker.
    venv_python = repo / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    venv_python.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """docker, uv's own binary and a python3 without pip or uv, as on a stock Debian/Ubuntu."""
    box = Sandbox(tmp_path)
    box.install(("docker", "uv", "python3"))
    box.update(uv_export=EXPORT)
    return box


def _build(repo: Path, box: Sandbox, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(repo / "scripts" / "build-images.sh")],
        env={"PATH": f"{box.bin}:/usr/bin:/bin", "HOME": str(repo.parent), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _docker_builds(box: Sandbox) -> list[list[str]]:
    return [argv for argv in box.calls("docker") if argv[:1] == ["build"] and "--help" not in argv]


@pytest.mark.parametrize(
    ("engine", "platform"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("arm64", "linux/arm64")],
)
def test_images_are_built_for_the_docker_engines_architecture(
    repo: Path, sandbox: Sandbox, engine: str, platform: str
) -> None:
    sandbox.update(arch=engine)
    (repo / "build" / "wheels").mkdir(parents=True)
    result = _build(repo, sandbox, SKIP_WHEELS="1")
    assert result.returncode == 0, result.stderr
    builds = _docker_builds(sandbox)
    assert len(builds) == 2
    for argv in builds:
        assert argv[argv.index("--platform") + 1] == platform, argv


@pytest.mark.parametrize(("engine", "arch"), [("x86_64", "x86_64"), ("aarch64", "aarch64")])
def test_wheelhouse_holds_the_locked_wheels_of_the_engines_architecture_without_pip(
    repo: Path, sandbox: Sandbox, engine: str, arch: str
) -> None:
    """uv's own binary on PATH and a python3 without pip or uv (a fresh Ubuntu): enough."""
    sandbox.update(arch=engine)
    result = _build(repo, sandbox)
    assert result.returncode == 0, result.stderr
    wheels = sorted(p.name for p in (repo / "build" / "wheels").glob("*.whl"))
    assert f"tiny-1.0-cp311-cp311-manylinux_2_17_{arch}.manylinux2014_{arch}.whl" in wheels
    assert "pure-2.0-py3-none-any.whl" in wheels
    assert not [w for w in wheels if w.startswith("tiny") and arch not in w], wheels
    assert not [w for w in wheels if w.startswith("winonly")]
    # With the lock's hashes, which the image's pip checks (--require-hashes).
    assert (repo / "build" / "requirements.txt").read_text() == EXPORT
    assert not sandbox.calls("python3"), "the system python3 was asked for a module"


def test_uv_is_found_where_bootstrap_puts_it(repo: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    (sandbox.bin / "uv").unlink()
    sandbox.install(("uv",), into=repo / ".tools" / f"uv-{UV_VERSION}")
    result = _build(repo, sandbox)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls("uv"), "the uv in .tools/ was not used"


def test_without_the_venv_uv_lends_the_wheel_picker_a_python(repo: Path, sandbox: Sandbox) -> None:
    shutil.rmtree(repo / ".venv")
    result = _build(repo, sandbox)
    assert result.returncode == 0, result.stderr
    (run,) = [argv for argv in sandbox.calls("uv") if argv[:1] == ["run"]]
    assert "--with" in run and run[run.index("--with") + 1] == "packaging"
    assert list((repo / "build" / "wheels").glob("tiny-1.0-*.whl"))


def test_a_wheel_whose_hash_the_export_does_not_list_is_not_taken(
    repo: Path, sandbox: Sandbox
) -> None:
    """The export and the lock must agree on every file, or the image's pip would refuse it."""
    tampered = "tiny==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    sandbox.update(uv_export=tampered + _export("pure==2.0"))
    result = _build(repo, sandbox)
    assert result.returncode != 0
    assert result.stderr.rstrip().endswith("of: tiny==1.0"), result.stderr
    assert not list((repo / "build" / "wheels").glob("tiny-*.whl"))
    assert not _docker_builds(sandbox)


def test_an_export_without_hashes_stops_the_build_before_docker(
    repo: Path, sandbox: Sandbox
) -> None:
    sandbox.update(uv_export="tiny==1.0\npure==2.0\n")
    result = _build(repo, sandbox)
    assert result.returncode != 0
    assert "no hashes for tiny==1.0, pure==2.0" in result.stderr
    assert "--no-hashes" in result.stderr  # what to change
    assert not _docker_builds(sandbox)


def test_missing_base_image_is_pulled(repo: Path, sandbox: Sandbox) -> None:
    sandbox.update(images=[])
    (repo / "build" / "wheels").mkdir(parents=True)
    result = _build(repo, sandbox, SKIP_WHEELS="1")
    assert result.returncode == 0, result.stderr
    assert ["pull", "debian:bookworm-slim"] in sandbox.calls("docker")
    assert len(_docker_builds(sandbox)) == 2


def test_base_image_that_cannot_be_pulled_stops_the_build_with_the_way_out(
    repo: Path, sandbox: Sandbox
) -> None:
    sandbox.update(images=[], registry=False)
    (repo / "build" / "wheels").mkdir(parents=True)
    result = _build(repo, sandbox, SKIP_WHEELS="1")
    assert result.returncode != 0
    assert ["pull", "debian:bookworm-slim"] in sandbox.calls("docker")
    assert "registry-1.docker.io" in result.stderr  # docker's own reason
    assert "k8s/README.md" in result.stderr  # how to import one without a registry
    assert not _docker_builds(sandbox)


def test_base_image_set_by_digest_is_pulled_built_from_and_tagged_apart(
    repo: Path, sandbox: Sandbox
) -> None:
    """BASE_IMAGE pins the base by digest: the Dockerfiles build FROM it, and the images get a
    tag of their own, so a cluster never runs one base's image under the other's tag."""
    (repo / "build" / "wheels").mkdir(parents=True)
    default = _build(repo, sandbox, SKIP_WHEELS="1")
    assert default.returncode == 0, default.stderr
    pinned = "debian@sha256:" + "4" * 64
    result = _build(repo, sandbox, SKIP_WHEELS="1", BASE_IMAGE=pinned)
    assert result.returncode == 0, result.stderr
    assert ["pull", pinned] in sandbox.calls("docker")
    builds = _docker_builds(sandbox)
    assert len(builds) == 4
    for argv, base in zip(builds, ["debian:bookworm-slim"] * 2 + [pinned] * 2, strict=True):
        assert argv[argv.index("--build-arg") + 1] == f"BASE_IMAGE={base}", argv
    assert not set(default.stdout.split()) & set(result.stdout.split())


@pytest.mark.parametrize("buildx", [True, False], ids=["buildx", "legacy-builder"])
def test_attestations_are_off_where_the_builder_has_the_flags(
    repo: Path, sandbox: Sandbox, buildx: bool
) -> None:
    """An attestation manifest is one reported trigger of `kind load` failing on Docker's
    containerd image store; the legacy builder makes none and refuses the flags."""
    sandbox.update(buildx=buildx)
    (repo / "build" / "wheels").mkdir(parents=True)
    result = _build(repo, sandbox, SKIP_WHEELS="1")
    assert result.returncode == 0, result.stderr
    for argv in _docker_builds(sandbox):
        flags = {"--provenance=false", "--sbom=false"} & set(argv)
        assert flags == ({"--provenance=false", "--sbom=false"} if buildx else set()), argv


def _uv() -> list[str]:
    return list(uv_command())


@pytest.fixture(scope="module")
def image_requirements(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image installs: the lock's closure without the dev group and the project."""
    path = tmp_path_factory.mktemp("export") / "requirements.txt"
    subprocess.run(
        [
            *_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--output-file",
            str(path),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "UV_NO_PROGRESS": "1"},
    )
    return path


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_package_the_image_installs_has_a_locked_wheel_for_the_architecture(
    image_requirements: Path, arch: str
) -> None:
    """So the arm64 image (Apple Silicon, arm Linux) cannot fail for want of a wheel: a cp311
    manylinux wheel for glibc <= 2.36 (Debian bookworm), an abi3 one, or a pure-Python one."""
    wheelhouse = _wheelhouse_module()
    wanted = wheelhouse.requirements(image_requirements, arch)
    assert not [w.name for w in wanted if not w.hashes], "requirements without a hash"
    picks, missing = wheelhouse.pick(wanted, wheelhouse.locked_wheels(REPO_ROOT / "uv.lock"), arch)
    assert not missing, f"no {arch} wheel in uv.lock for: {', '.join(missing)}"
    assert len(picks) > 100
    for wheel in picks:
        assert wheel.filename.endswith(("-none-any.whl", f"_{arch}.whl")), wheel.filename


def test_a_second_checkout_takes_its_wheels_from_the_cache_not_the_index(
    repo: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A fresh clone (CI's, or a learner's second checkout) builds its wheelhouse from the wheels
    an earlier build downloaded: the index is not asked again (here it is gone)."""
    assert _build(repo, sandbox).returncode == 0
    shutil.rmtree(repo / "build")
    shutil.rmtree(tmp_path / "index")
    again = _build(repo, sandbox)
    assert again.returncode == 0, again.stderr
    assert list((repo / "build" / "wheels").glob("tiny-1.0-*.whl"))

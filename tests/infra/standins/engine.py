"""The Docker side of the stand-ins: docker, kind, uv's own binary, a python3 without pip or uv,
and the image build as the runtime sees it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

from . import BUILT_IMAGES
from .world import NODE_SUFFIX, Failed, World, option

DOCKER_BUILD_HELP = """
Usage:  docker buildx build [OPTIONS] PATH | URL | -

Start a build

Aliases:
  docker build, docker builder build, docker image build, docker buildx b

Options:
  -f, --file string               Name of the Dockerfile (default: "PATH/Dockerfile")
      --platform stringArray      Set target platform for build
      --provenance string         Shorthand for "--attest=type=provenance"
  -q, --quiet                     Suppress the build output and print image ID on succeed
      --sbom string               Shorthand for "--attest=type=sbom"
  -t, --tag stringArray           Name and optionally a tag (format: "name:tag")
"""
# The legacy builder's help (Docker without the buildx plugin): no attestation flags.
LEGACY_BUILD_HELP = """
Usage:  docker build [OPTIONS] PATH | URL | -

Build an image from a Dockerfile

Options:
  -f, --file string             Name of the Dockerfile (Default is 'PATH/Dockerfile')
      --platform string         Set platform if server is multi-platform capable
  -q, --quiet                   Suppress the build output and print image ID on success
  -t, --tag list                Name and optionally a tag in the 'name:tag' format
"""


def docker(world: World, argv: list[str]) -> int:
    data = world.data
    if argv[:1] == ["build"] and "--help" in argv:
        print(DOCKER_BUILD_HELP if data["buildx"] else LEGACY_BUILD_HELP)
        return 0
    if not data["engine"]:
        raise Failed(
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?"
        )
    command, rest = argv[0], argv[1:]
    if command == "info":
        template = option(rest, "--format") or ""
        if ".Architecture" in template:
            print(data["arch"])
        elif ".ServerVersion" in template:
            print(data["server_version"])
        else:
            print(f"Server Version: {data['server_version']}\nArchitecture: {data['arch']}")
        return 0
    if command == "ps":
        name_filter = option(rest, "--filter") or ""
        name = name_filter.removeprefix("name=").strip("^$")
        node = world.container(name)
        if node is not None:
            print(node["state"] if "{{.State}}" in (option(rest, "--format") or "") else name)
        return 0
    if command in ("start", "stop", "rm"):
        name = rest[-1]
        node = world.container(name)
        if node is None:
            raise Failed(f"Error response from daemon: No such container: {name}")
        if command == "rm":
            if node["state"] == "running" and "-f" not in rest and "--force" not in rest:
                raise Failed(f"Error response from daemon: cannot remove container {name}: stop it")
            del data["containers"][name]
        else:
            node["state"] = "running" if command == "start" else "exited"
        world.save()
        print(name)
        return 0
    if command == "image" and rest[:1] == ["inspect"]:
        ref = rest[-1]
        if ref not in data["images"]:
            raise Failed(f"Error response from daemon: No such image: {ref}")
        print(json.dumps([{"RepoTags": [ref], "Architecture": _go_arch(data["arch"])}]))
        return 0
    if command == "pull":
        ref = rest[-1]
        if not data["registry"]:
            raise Failed(
                'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: '
                "lookup registry-1.docker.io: no such host"
            )
        data["images"].append(ref)
        world.save()
        print(f"Status: Downloaded newer image for {ref}")
        return 0
    if command == "build":
        if not data["buildx"]:
            for flag in ("--provenance", "--sbom"):
                if any(arg.split("=", 1)[0] == flag for arg in rest):
                    raise Failed(f"unknown flag: {flag}\nSee 'docker build --help'.", code=125)
        platform = option(rest, "--platform")
        if platform and platform != f"linux/{_go_arch(data['arch'])}":
            raise Failed(f"stand-in docker: cannot build {platform} on {data['arch']}")
        tag = option(rest, "--tag") or option(rest, "-t")
        if tag:
            data["images"].append(tag)
            world.save()
        print("sha256:" + hashlib.sha256((tag or "").encode()).hexdigest())
        return 0
    raise Failed(f"stand-in docker: unsupported command {' '.join(argv)}")


def _go_arch(arch: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)


def kind(world: World, argv: list[str]) -> int:
    data = world.data
    name = option(argv, "--name") or "kind"
    node_name = name + NODE_SUFFIX
    if argv[:2] == ["load", "docker-image"]:
        refs = [a for a in argv[2:] if not a.startswith("--") and a != name]
        if world.node_state(name) != "running":
            raise Failed(f'ERROR: no nodes found for cluster "{name}"')
        for ref in refs:
            if ref not in data["images"]:
                raise Failed(f"ERROR: image: {ref!r} not present locally")
        if data["containerd_store"]:
            raise Failed(
                'ERROR: failed to load image: command "docker exec --privileged -i '
                f"{node_name} ctr --namespace=k8s.io images import --all-platforms --digests "
                '--snapshotter=overlayfs -" failed with error: exit status 1\nCommand Output: '
                "ctr: content digest sha256:2f7a1c0e5b0d: not found"
            )
        for ref in refs:
            print(f'Image: "{ref}" not yet present on node "{node_name}", loading...')
        return 0
    if argv[:2] == ["delete", "cluster"]:
        print(f'Deleting cluster "{name}" ...')
        data["containers"].pop(node_name, None)
        world.save()
        return 0
    raise Failed(f"stand-in kind: unsupported command {' '.join(argv)}")


def uv(world: World, argv: list[str]) -> int:
    """uv's own binary, for scripts/build-images.sh: `--version`, `export` (the world's export,
    whose hashes `--no-hashes` drops), and `run ... python` (this test run's Python, which has
    what `--with` asks for)."""
    if argv[:1] == ["--version"]:
        print("uv 0.13.9 (stand-in)")
        return 0
    if argv[:1] == ["export"]:
        out = option(argv, "--output-file")
        text = world.data["uv_export"]
        if "--no-hashes" in argv:
            text = re.sub(r" \\\n\s*--hash=\S+", "", text)
        if out:
            world.inside(Path(out)).write_text(text)
        else:
            print(text)
        return 0
    if argv[:1] == ["run"] and "python" in argv:
        args = argv[argv.index("python") + 1 :]
        return subprocess.run([sys.executable, *args], check=False).returncode
    raise Failed(f"stand-in uv: unsupported command {' '.join(argv)}")


def python3(world: World, argv: list[str]) -> int:
    """A stock Debian/Ubuntu python3: no pip, no uv module."""
    if argv[:1] == ["-m"] and len(argv) > 1:
        raise Failed(f"/usr/bin/python3: No module named {argv[1]}")
    raise Failed(f"stand-in python3: not expected here: {' '.join(argv)}")


def build_images(world: World, argv: list[str]) -> int:
    """scripts/build-images.sh as the runtime sees it: the images are in the engine afterwards."""
    world.data["images"].extend(BUILT_IMAGES.values())
    world.save()
    for ref in BUILT_IMAGES.values():
        print(ref)
    return 0

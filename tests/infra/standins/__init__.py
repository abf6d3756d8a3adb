"""Stand-ins for docker, kind, terraform, kubectl, uv and python3: the kind runtime's lifecycle and
the image build under test without a download, a cluster or a Docker engine.

Each tool is a wrapper named after it in ``SANDBOX/bin``, which a test puts first on PATH, and
which calls :func:`standins.tools.main` (docker, kind, uv, python3: ``engine``; ``terraform``;
``kubectl``). The stand-ins
share one world (``SANDBOX/world.json``): the Docker engine's architecture, images and containers,
the objects in the cluster, what fails. They answer in the real tools' output formats for the
commands the runtime and scripts/build-images.sh use, append every call to ``SANDBOX/calls.jsonl``,
and fail on demand: a rule ``{"tool": "terraform", "args": "platform apply", "message": ...}`` in
``world["fail"]`` makes every call of that tool whose joined arguments contain ``args`` print the
message and exit 1.

Where a real tool depends on state outside its arguments, so do they: terraform keeps a state file
at its backend path and refreshes each resource before apply and destroy (unless
``-refresh=false``), which fails as provider tehcyx/kind 0.8.0 does when the node container is
stopped or gone; ``-chdir`` changes the directory every relative path is resolved from; kubectl
answers only while its kubeconfig exists and the node runs. They write nothing outside SANDBOX:
a path that resolves elsewhere (a relative path under ``-chdir``, say) is refused with an error.

Standard library only: the wrappers run Python with ``-S``, so a call takes milliseconds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOLS = ("docker", "kind", "terraform", "kubectl", "uv", "python3", "build-images")
# What the stand-in image build leaves in the engine (and `kind load` must find there).
BUILT_IMAGES = {
    "mlops-lab-platform": "mlops-lab-platform:standin",
    "mlops-lab-postgres": "mlops-lab-postgres:standin",
}
# The wrappers' text: Python without site-packages, this package importable, one tool.
_WRAPPER = """#!{python} -S
import sys
sys.path.insert(0, {parent!r})
from standins.tools import main
sys.exit(main({root!r}, {tool!r}, sys.argv[1:]))
"""


def default_world() -> dict[str, Any]:
    return {
        "engine": True,
        "server_version": "28.2.2",
        "arch": "x86_64",
        "buildx": True,
        "containerd_store": False,
        "registry": True,
        "images": ["debian:bookworm-slim"],
        "containers": {},
        "namespaces": [],
        "secrets": [],
        "deployments": [],
        # What `kubectl apply -k` of the overlay creates (the test sets the runtime's list).
        "overlay_deployments": [],
        "uv_export": "",
        "fail": [],
    }


@dataclass(frozen=True)
class Sandbox:
    """The test's side: install the wrappers, set up the world, read back the calls."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def world_path(self) -> Path:
        return self.root / "world.json"

    @property
    def calls_path(self) -> Path:
        return self.root / "calls.jsonl"

    def install(self, tools: tuple[str, ...] = TOOLS, into: Path | None = None) -> Path:
        """Write a wrapper per tool (into ``bin`` unless told) and a fresh world."""
        target = into or self.bin
        target.mkdir(parents=True, exist_ok=True)
        for tool in tools:
            wrapper = target / tool
            parent = str(Path(__file__).parent.parent)
            text = _WRAPPER.format(
                python=sys.executable, parent=parent, root=str(self.root), tool=tool
            )
            wrapper.write_text(text)
            wrapper.chmod(0o755)
        if not self.world_path.exists():
            self.save(default_world())
        return target

    def world(self) -> dict[str, Any]:
        return json.loads(self.world_path.read_text())

    def save(self, world: dict[str, Any]) -> None:
        self.world_path.write_text(json.dumps(world, indent=2))

    def update(self, **values: Any) -> None:
        self.save({**self.world(), **values})

    def fail(self, tool: str, args: str, message: str) -> None:
        world = self.world()
        world["fail"].append({"tool": tool, "args": args, "message": message})
        self.save(world)

    def calls(self, tool: str | None = None) -> list[list[str]]:
        if not self.calls_path.exists():
            return []
        entries = [json.loads(line) for line in self.calls_path.read_text().splitlines()]
        return [e["argv"] for e in entries if tool is None or e["tool"] == tool]

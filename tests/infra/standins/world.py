"""What every stand-in shares: the world file, failing as a tool fails, reading options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NODE_SUFFIX = "-control-plane"


class Failed(Exception):
    """Print the message on stderr and exit with the code, as the real tool would."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class World:
    """The stand-ins' shared state, ``world.json`` in the sandbox, and where they may write."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.path = self.root / "world.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text())

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2))

    def inside(self, path: Path) -> Path:
        """``path`` made absolute, or an error when it lies outside the sandbox."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise Failed(f"stand-in: refusing to write {resolved}, outside the test's {self.root}")
        return resolved

    def container(self, name: str) -> dict[str, Any] | None:
        return self.data["containers"].get(name)

    def node_state(self, cluster: str) -> str:
        node = self.container(cluster + NODE_SUFFIX)
        return node["state"] if node else ""

    def api_answers(self, kubeconfig: Path) -> bool:
        """An API server answers with this kubeconfig while the file exists and a node runs."""
        if not kubeconfig.is_file():
            return False
        names = [n.removesuffix(NODE_SUFFIX) for n in self.data["containers"]]
        return any(self.node_state(name) == "running" for name in names)


def option(argv: list[str], name: str) -> str | None:
    """``--name value`` or ``--name=value``."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None

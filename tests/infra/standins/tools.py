"""The entry point of every wrapper: log the call, apply the failure rules, run the tool."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import engine, kubectl, terraform
from .world import Failed, World

HANDLERS = {
    "docker": engine.docker,
    "kind": engine.kind,
    "uv": engine.uv,
    "python3": engine.python3,
    "build-images": engine.build_images,
    "terraform": terraform.terraform,
    "kubectl": kubectl.kubectl,
}


def main(root: str, tool: str, argv: list[str]) -> int:
    world = World(Path(root))
    with (world.root / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"tool": tool, "argv": argv, "cwd": os.getcwd()}) + "\n")
    joined = " ".join(argv)
    try:
        for rule in world.data["fail"]:
            if rule["tool"] == tool and rule["args"] in joined:
                raise Failed(rule["message"])
        return HANDLERS[tool](world, argv)
    except Failed as failure:
        print(str(failure), file=sys.stderr)
        return failure.code

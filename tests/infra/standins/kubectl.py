"""kubectl as the runtime uses it: the API's version, namespaces, Secrets, `apply -f -`, `apply -k`
and Deployments whose rollout is complete."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .world import Failed, World, option


def kubectl(world: World, argv: list[str]) -> int:
    data = world.data
    kubeconfig = Path(option(argv, "--kubeconfig") or Path.home() / ".kube" / "config")
    namespace = option(argv, "--namespace") or "default"
    args = _without(argv, "--kubeconfig", "--namespace")
    if not world.api_answers(kubeconfig):
        raise Failed(
            "The connection to the server 127.0.0.1:40000 was refused - did you specify the "
            "right host or port?"
        )
    if args[:2] == ["get", "--raw"]:
        print(json.dumps({"major": "1", "minor": "31", "gitVersion": "v1.31.2"}))
        return 0
    if args[:1] == ["get"]:
        kind, name = args[1], (args[2] if len(args) > 2 and not args[2].startswith("-") else None)
        output = option(args, "-o") or ""
        if kind == "namespace" and name:
            if name not in data["namespaces"]:
                raise Failed(f'Error from server (NotFound): namespaces "{name}" not found')
            print("Active" if output.startswith("jsonpath") else f"namespace/{name}")
            return 0
        if kind == "secret" and name:
            if name not in data["secrets"]:
                raise Failed(f'Error from server (NotFound): secrets "{name}" not found')
            print(f"secret/{name}")
            return 0
        if kind in ("deployments", "deployment") and name is None:
            items = [_deployment(d, namespace) for d in data["deployments"]]
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            return 0
        if kind in ("pods", "services", "events") and name is None:
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": []}))
            return 0
    if args[:3] == ["apply", "-f", "-"]:
        for item in json.loads(sys.stdin.read())["items"]:
            if item["kind"] == "Secret":
                data["secrets"].append(item["metadata"]["name"])
            print(f"{item['kind'].lower()}/{item['metadata']['name']} created")
        world.save()
        return 0
    if args[:3] == ["create", "-f", "-"]:
        item = json.loads(sys.stdin.read())
        name = item["metadata"]["name"]
        if item["kind"] == "Secret":
            if name in data["secrets"]:
                raise Failed(f'Error from server (AlreadyExists): secrets "{name}" already exists')
            data["secrets"].append(name)
        print(f"{item['kind'].lower()}/{name} created")
        world.save()
        return 0
    if args[:2] == ["apply", "-k"]:
        data["namespaces"] = sorted({*data["namespaces"], namespace})
        data["deployments"] = list(data["overlay_deployments"])
        world.save()
        for name in data["deployments"]:
            print(f"deployment.apps/{name} created")
        return 0
    if args[:2] == ["create", "namespace"]:
        data["namespaces"] = sorted({*data["namespaces"], args[2]})
        world.save()
        return 0
    raise Failed(f"stand-in kubectl: unsupported command {' '.join(args)}")


def _without(argv: list[str], *options: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not any(arg.startswith(option + "=") for option in options):
            out.append(arg)
    return out


def _deployment(name: str, namespace: str) -> dict[str, Any]:
    """A Deployment whose rollout is complete."""
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "creationTimestamp": "2026-12-01T00:00:00Z",
        },
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
        },
    }

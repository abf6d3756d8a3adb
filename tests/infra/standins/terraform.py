"""terraform as the kind runtime runs it on its two roots: init with a local backend path, apply,
destroy, output, state list and state rm; each resource refreshed first as its provider would."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from .world import NODE_SUFFIX, Failed, World, option


def terraform(world: World, argv: list[str]) -> int:
    # -chdir first: every relative path below (TF_DATA_DIR, -var-file, the backend path, paths in
    # the variables) is then resolved from the root's directory, as Terraform does.
    if argv and argv[0].startswith("-chdir="):
        os.chdir(argv[0].split("=", 1)[1])
        argv = argv[1:]
    root = Path.cwd().name
    data_dir = Path(os.environ.get("TF_DATA_DIR", ".terraform"))
    backend_file = data_dir / "standin-backend.json"
    command, rest = argv[0], argv[1:]
    if command == "init":
        config = option(rest, "-backend-config") or ""
        if config.startswith("path="):
            state = world.inside(Path(config.split("=", 1)[1]))
            world.inside(data_dir).mkdir(parents=True, exist_ok=True)
            world.inside(backend_file).write_text(json.dumps({"path": str(state)}))
        elif not backend_file.exists():
            raise Failed("stand-in terraform: init without -backend-config=path=")
        print("Terraform has been successfully initialized!")
        return 0
    if not backend_file.exists():
        raise Failed(
            'Error: Backend initialization required, please run "terraform init"\n'
            'Reason: Initial configuration of the requested backend "local"'
        )
    state_path = Path(json.loads(backend_file.read_text())["path"])
    state = _read_state(state_path)
    if command in ("apply", "destroy"):
        var_file = option(rest, "-var-file")
        variables = json.loads(Path(var_file).read_text()) if var_file else {}
        if "-refresh=false" not in rest:
            _refresh(world, root, state)
        if command == "apply":
            _apply(world, root, state, variables)
            print("Apply complete!")
        else:
            _destroy(world, root, state)
            print("Destroy complete!")
        _write_state(world, state_path, state)
        return 0
    if command == "output":
        outputs = state.get("outputs", {})
        names = [a for a in rest if not a.startswith("-")]
        if "-json" in rest:
            chosen = outputs[names[0]]["value"] if names else outputs
            print(json.dumps(chosen))
            return 0
        if not names or names[0] not in outputs:
            raise Failed(f'Error: Output "{names[0] if names else ""}" not found')
        sys.stdout.write(str(outputs[names[0]]["value"]))
        return 0
    if command == "state" and rest[:1] == ["list"]:
        for address in _addresses(state):
            print(address)
        return 0
    if command == "state" and rest[:1] == ["rm"]:
        removed = [a for a in rest[1:] if a in _addresses(state)]
        if not removed:
            raise Failed(f"Error: Invalid target address\nNo matching objects found for {rest[1:]}")
        state["resources"] = [r for r in state["resources"] if _address(r) not in removed]
        if not state["resources"]:
            state["outputs"] = {}
        _write_state(world, state_path, state)
        for address in removed:
            print(f"Removed {address}")
        print(f"Successfully removed {len(removed)} resource instance(s).")
        return 0
    raise Failed(f"stand-in terraform: unsupported command {' '.join(argv)}")


def _read_state(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 0,
        "outputs": {},
        "resources": [],
    }


def _write_state(world: World, path: Path, state: dict[str, Any]) -> None:
    state["serial"] += 1
    target = world.inside(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(state, indent=2))


def _address(resource: dict[str, Any]) -> str:
    return f"{resource['type']}.{resource['name']}"


def _addresses(state: dict[str, Any]) -> list[str]:
    return [_address(r) for r in state["resources"]]


def _resource(kind: str, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": "managed",
        "type": kind,
        "name": name,
        "instances": [{"schema_version": 0, "attributes": attributes}],
    }


def _refresh(world: World, root: str, state: dict[str, Any]) -> None:
    """Read every resource held, as the providers do before a plan."""
    for resource in state["resources"]:
        attributes = resource["instances"][0]["attributes"]
        if resource["type"] == "kind_cluster":
            # tehcyx/kind 0.8.0's Read asks kind for the kubeconfig: `cat` inside the node.
            name = attributes["name"]
            node_state = world.node_state(name)
            if not node_state:
                raise Failed(
                    "Error: could not locate any control plane nodes\n\n"
                    "  with kind_cluster.this,\n  on main.tf line 2"
                )
            if node_state != "running":
                raise Failed(
                    'Error: failed to get kubeconfig: command "docker exec --privileged '
                    f'{name}{NODE_SUFFIX} cat /etc/kubernetes/admin.conf" failed with error: '
                    f"exit status 1\nError response from daemon: container {name}{NODE_SUFFIX} "
                    "is not running"
                )
        elif not world.api_answers(Path(attributes["kubeconfig_path"])):
            raise Failed(
                f"Error: Kubernetes cluster unreachable ({root} root: "
                f"{resource['type']}.{resource['name']})"
            )


def _apply(world: World, root: str, state: dict[str, Any], variables: dict[str, Any]) -> None:
    if root == "cluster":
        if "kind_cluster.this" in _addresses(state):
            return  # no changes
        name = variables["cluster_name"]
        if world.container(name + NODE_SUFFIX) is not None:
            raise Failed(
                "Error: failed to create cluster: node(s) already exist for a cluster with the "
                f'name "{name}"'
            )
        address = variables["listen_address"]
        for mapping in variables["port_mappings"]:
            with socket.socket() as probe:
                try:
                    probe.bind((address, mapping["host_port"]))
                except OSError:
                    raise Failed(
                        'Error: failed to create cluster: command "docker run --name '
                        f'{name}{NODE_SUFFIX} ..." failed with error: exit status 125\n'
                        "docker: Error response from daemon: driver failed programming external "
                        f"connectivity on endpoint {name}{NODE_SUFFIX}: Error starting userland "
                        f"proxy: listen tcp4 {address}:{mapping['host_port']}: bind: address "
                        "already in use."
                    ) from None
        kubeconfig = world.inside(Path(variables["kubeconfig_path"]))
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        kubeconfig.write_text(
            f"apiVersion: v1\nkind: Config\ncurrent-context: kind-{name}\n"
            f"clusters:\n- name: kind-{name}\n  cluster:\n    server: https://127.0.0.1:40000\n"
        )
        world.data["containers"][name + NODE_SUFFIX] = {
            "state": "running",
            "ports": [
                [address, m["host_port"], m["node_port"]] for m in variables["port_mappings"]
            ],
        }
        world.save()
        attributes = {"name": name, "kubeconfig_path": str(kubeconfig)}
        state["resources"] = [_resource("kind_cluster", "this", attributes)]
        state["outputs"] = {
            "kubeconfig_path": {"value": str(kubeconfig), "type": "string"},
            "cluster_name": {"value": name, "type": "string"},
        }
        return
    kubeconfig = Path(variables["kubeconfig_path"])
    if not world.api_answers(kubeconfig):
        raise Failed("Error: Kubernetes cluster unreachable: invalid configuration")
    attributes = {"kubeconfig_path": str(kubeconfig.resolve())}
    state["resources"] = [
        _resource("kubernetes_namespace", "monitoring", attributes),
        _resource("helm_release", "kube_prometheus_stack", attributes),
    ]
    state["outputs"] = {"release_name": {"value": variables["release_name"], "type": "string"}}


def _destroy(world: World, root: str, state: dict[str, Any]) -> None:
    for resource in state["resources"]:
        if resource["type"] == "kind_cluster":
            attributes = resource["instances"][0]["attributes"]
            world.data["containers"].pop(attributes["name"] + NODE_SUFFIX, None)
            Path(attributes["kubeconfig_path"]).unlink(missing_ok=True)
            world.save()
    state["resources"] = []
    state["outputs"] = {}

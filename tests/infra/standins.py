"""Stand-ins for docker, kind, terraform, kubectl, uv and python3: the kind runtime's lifecycle and
the image build under test without a download, a cluster or a Docker engine.

Each tool is this file run as a program (``python -S standins.py SANDBOX TOOL ARGS...``) through a
wrapper named after the tool in ``SANDBOX/bin``, which a test puts first on PATH. The stand-ins
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

Standard library only: the wrappers run Python with ``-S`` so each call takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOLS = ("docker", "kind", "terraform", "kubectl", "uv", "python3", "build-images")
NODE_SUFFIX = "-control-plane"
# What the stand-in image build leaves in the engine (and `kind load` must find there).
BUILT_IMAGES = {
    "mlops-lab-platform": "mlops-lab-platform:standin",
    "mlops-lab-postgres": "mlops-lab-postgres:standin",
}
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
            wrapper.write_text(
                f"#!{sys.executable} -S\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                f"from standins import main\nsys.exit(main({str(self.root)!r}, {tool!r}, sys.argv[1:]))\n"
            )
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


# ---- the tools' side ------------------------------------------------------------------------


class Failed(Exception):
    """Print the message on stderr and exit with the code, as the real tool would."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class World:
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


def _option(argv: list[str], name: str) -> str | None:
    """``--name value`` or ``--name=value``."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


# ---- docker ---------------------------------------------------------------------------------


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
        template = _option(rest, "--format") or ""
        if ".Architecture" in template:
            print(data["arch"])
        elif ".ServerVersion" in template:
            print(data["server_version"])
        else:
            print(f"Server Version: {data['server_version']}\nArchitecture: {data['arch']}")
        return 0
    if command == "ps":
        name_filter = _option(rest, "--filter") or ""
        name = name_filter.removeprefix("name=").strip("^$")
        node = world.container(name)
        if node is not None:
            print(node["state"] if "{{.State}}" in (_option(rest, "--format") or "") else name)
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
        platform = _option(rest, "--platform")
        if platform and platform != f"linux/{_go_arch(data['arch'])}":
            raise Failed(f"stand-in docker: cannot build {platform} on {data['arch']}")
        tag = _option(rest, "--tag") or _option(rest, "-t")
        if tag:
            data["images"].append(tag)
            world.save()
        print("sha256:" + hashlib.sha256((tag or "").encode()).hexdigest())
        return 0
    raise Failed(f"stand-in docker: unsupported command {' '.join(argv)}")


def _go_arch(arch: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)


# ---- kind -----------------------------------------------------------------------------------


def kind(world: World, argv: list[str]) -> int:
    data = world.data
    name = _option(argv, "--name") or "kind"
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
            print(f'Image: "{ref}" with ID "sha256:0" not yet present on node "{node_name}", loading...')
        return 0
    if argv[:2] == ["delete", "cluster"]:
        print(f'Deleting cluster "{name}" ...')
        data["containers"].pop(node_name, None)
        world.save()
        return 0
    raise Failed(f"stand-in kind: unsupported command {' '.join(argv)}")


# ---- terraform ------------------------------------------------------------------------------


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
        config = _option(rest, "-backend-config") or ""
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
            "Error: Backend initialization required, please run \"terraform init\"\n"
            "Reason: Initial configuration of the requested backend \"local\""
        )
    state_path = Path(json.loads(backend_file.read_text())["path"])
    state = _read_state(state_path)
    if command in ("apply", "destroy"):
        var_file = _option(rest, "-var-file")
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
    return {"version": 4, "terraform_version": "1.11.4", "serial": 0, "outputs": {}, "resources": []}


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
                    "Error: failed to get kubeconfig: command \"docker exec --privileged "
                    f'{name}{NODE_SUFFIX} cat /etc/kubernetes/admin.conf" failed with error: '
                    f"exit status 1\nError response from daemon: container {name}{NODE_SUFFIX} "
                    "is not running"
                )
        elif not _api_answers(world, Path(attributes["kubeconfig_path"])):
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
            "ports": [[address, m["host_port"], m["node_port"]] for m in variables["port_mappings"]],
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
    if not _api_answers(world, kubeconfig):
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


def _api_answers(world: World, kubeconfig: Path) -> bool:
    if not kubeconfig.is_file():
        return False
    names = [n.removesuffix(NODE_SUFFIX) for n in world.data["containers"]]
    return any(world.node_state(name) == "running" for name in names)


# ---- kubectl --------------------------------------------------------------------------------


def kubectl(world: World, argv: list[str]) -> int:
    data = world.data
    kubeconfig = Path(_option(argv, "--kubeconfig") or Path.home() / ".kube" / "config")
    namespace = _option(argv, "--namespace") or "default"
    args = _without(argv, "--kubeconfig", "--namespace")
    if not _api_answers(world, kubeconfig):
        raise Failed(
            "The connection to the server 127.0.0.1:40000 was refused - did you specify the "
            "right host or port?"
        )
    if args[:2] == ["get", "--raw"]:
        print(json.dumps({"major": "1", "minor": "31", "gitVersion": "v1.31.2"}))
        return 0
    if args[:1] == ["get"]:
        kind, name = args[1], (args[2] if len(args) > 2 and not args[2].startswith("-") else None)
        output = _option(args, "-o") or ""
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


# ---- uv, python3 and the image build --------------------------------------------------------


def uv(world: World, argv: list[str]) -> int:
    """uv's own binary, for scripts/build-images.sh: `--version`, `export`, `build --wheel`."""
    if argv[:1] == ["--version"]:
        print("uv 0.13.9 (stand-in)")
        return 0
    if argv[:1] == ["export"]:
        out = _option(argv, "--output-file")
        text = world.data["uv_export"]
        if out:
            world.inside(Path(out)).write_text(text)
        else:
            print(text)
        return 0
    if argv[:1] == ["build"]:
        out = Path(_option(argv, "--out-dir") or "dist")
        world.inside(out).mkdir(parents=True, exist_ok=True)
        (out / "mlops_lab-0.1.0-py3-none-any.whl").write_bytes(b"stand-in")
        return 0
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


HANDLERS = {
    "docker": docker,
    "kind": kind,
    "terraform": terraform,
    "kubectl": kubectl,
    "uv": uv,
    "python3": python3,
    "build-images": build_images,
}

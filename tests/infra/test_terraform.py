"""The Terraform roots, checked without a provider download: formatting, pinned providers and
chart, typed and described variables, the outputs the runtime reads, and ports that agree with
the manifests and the settings.

HCL is parsed by python-hcl2 from checkov's locked environment (tools/checkov), run once for
both roots.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from mlops_lab.runtime.kube import plan as kube_plan
from platform_core.settings import REPO_ROOT, Settings
from tests.k8s.conftest import named, render
from tests.support import uv_command

TERRAFORM = REPO_ROOT / "infra" / "terraform"
ROOTS = ("cluster", "platform")
EXACT = re.compile(r"^\d+\.\d+\.\d+$")

_PARSE = """
import hcl2, json, pathlib, sys
out = {}
for root in sys.argv[1:]:
    blocks = {}
    for tf in sorted(pathlib.Path(root).glob("*.tf")):
        for key, value in hcl2.loads(tf.read_text()).items():
            blocks.setdefault(key, []).extend(value)
    out[pathlib.Path(root).name] = blocks
print(json.dumps(out, default=str))
"""


def _uv() -> list[str]:
    return list(uv_command())


@pytest.fixture(scope="module")
def roots() -> dict[str, dict]:
    argv = [*_uv(), "run", "--project", "tools/checkov", "--frozen", "python", "-c", _PARSE]
    result = subprocess.run(
        [*argv, *(str(TERRAFORM / r) for r in ROOTS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _variables(root: dict) -> dict[str, dict]:
    return {name: body for block in root["variable"] for name, body in block.items()}


def _outputs(root: dict) -> set[str]:
    return {name for block in root["output"] for name in block}


def test_terraform_files_are_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
        )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive infra/terraform`:\n{result.stdout}"
    )


@pytest.mark.parametrize("name", ROOTS)
def test_root_has_the_standard_layout(name: str) -> None:
    for part in ("versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md"):
        assert (TERRAFORM / name / part).is_file(), f"infra/terraform/{name} lacks {part}"


@pytest.mark.parametrize("name", ROOTS)
def test_every_provider_is_pinned_to_an_exact_version(roots: dict, name: str) -> None:
    providers = {}
    for block in roots[name]["terraform"]:
        for required in block.get("required_providers", []):
            providers.update(required)
    assert providers, f"{name}: no required_providers"
    for provider, spec in providers.items():
        spec = spec[0] if isinstance(spec, list) else spec
        assert EXACT.match(spec.get("version", "")), f"{name}: {provider} is {spec}, not pinned"


@pytest.mark.parametrize("name", ROOTS)
def test_every_variable_is_typed_described_and_defaulted(roots: dict, name: str) -> None:
    variables = _variables(roots[name])
    assert variables
    for variable, body in variables.items():
        assert body.get("type"), f"{name}: variable {variable} has no type"
        assert len(str(body.get("description", [""])[0])) > 20, f"{name}: {variable} undescribed"
        assert "default" in body, f"{name}: variable {variable} has no default"


def test_outputs_give_the_runtime_what_it_reads(roots: dict) -> None:
    assert {"kubeconfig_path", "cluster_name"} <= _outputs(roots["cluster"])
    assert {"release_name", "platform_namespace", "monitoring_namespace"} <= _outputs(
        roots["platform"]
    )


def test_chart_version_is_pinned_and_used(roots: dict) -> None:
    variables = _variables(roots["platform"])
    assert EXACT.match(variables["chart_version"]["default"][0])
    releases = [
        body
        for block in roots["platform"]["resource"]
        for body in block.get("helm_release", {}).values()
    ]
    assert [r["version"] for r in releases] == [["${var.chart_version}"]]
    assert variables["release_name"]["default"] == [kube_plan.RELEASE]


def test_cluster_ports_agree_with_the_manifests_and_the_settings(roots: dict) -> None:
    """The default mapping is what `up` passes: manifests' NodePorts, the settings' host ports."""
    default = _variables(roots["cluster"])["port_mappings"]["default"][0]
    expected = kube_plan.port_mappings(Settings(), kube_plan.read_node_ports())
    key = lambda m: m["name"]  # noqa: E731
    assert sorted(default, key=key) == sorted(expected, key=key)


def test_kind_node_image_is_pinned_by_digest(roots: dict) -> None:
    """A tag can be pushed again; kind's release notes give each node image's digest."""
    image = _variables(roots["cluster"])["node_image"]["default"][0]
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image


def test_platform_node_ports_are_the_ones_the_cluster_publishes(roots: dict) -> None:
    variables = _variables(roots["platform"])
    for name, node_port in kube_plan.MONITORING_NODE_PORTS.items():
        assert variables[f"{name}_node_port"]["default"] == [node_port]


def test_platform_namespace_is_created_with_the_manifests_labels(roots: dict) -> None:
    """Terraform creates the namespace before the manifests are applied: it enforces Pod Security
    `restricted` from the start, and a later `kubectl apply` changes no label."""
    (namespace,) = [
        body["platform"]
        for block in roots["platform"]["resource"]
        for kind, body in block.items()
        if kind == "kubernetes_namespace" and "platform" in body
    ]
    manifest = named(render("base"), "Namespace", kube_plan.NAMESPACE)
    assert namespace["metadata"][0]["labels"] == [manifest["metadata"]["labels"]]

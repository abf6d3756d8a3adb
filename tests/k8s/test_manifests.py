"""Static checks of the manifests and images: they render, validate against the Kubernetes schemas
of the versions they must run on, follow the security baseline, and pass checkov."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mlops_lab.runtime.kube.assets import K8S_DIR, NAMESPACE, RELEASE
from platform_core.settings import REPO_ROOT
from tests.k8s.conftest import VARIANTS, of_kind, pod_specs
from tests.support import uv_command

IMAGES_DIR = REPO_ROOT / "images"
CHECKOV_CONFIG = K8S_DIR / ".checkov.yaml"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}
BASE_IMAGE = "debian:bookworm-slim"  # what the images build FROM unless BASE_IMAGE says otherwise
# The base must run on the Kubernetes that CI builds from Debian's archive (1.20): these are the
# API versions of the kinds we use that 1.20 serves. kubernetes-validate's oldest schemas are
# 1.25, so the base's fields are validated against those and its API versions against this list.
SERVED_BY_1_20 = {
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
}
OLDEST_SCHEMAS = "1.25"
DEPRECATED_KUSTOMIZE_FIELDS = {
    "bases",
    "patchesStrategicMerge",
    "patchesJson6902",
    "vars",
    "commonLabels",
    "imageTags",
}


def kind_node_version() -> str:
    """The Kubernetes minor version of the kind node that infra/terraform/cluster pins."""
    variables = REPO_ROOT / "infra" / "terraform" / "cluster" / "variables.tf"
    # The tag, and the digest that pins it where there is one.
    found = re.search(
        r'"kindest/node:v(\d+\.\d+)\.\d+(@sha256:[0-9a-f]{64})?"', variables.read_text()
    )
    assert found, f"no kindest/node:vX.Y.Z default in {variables.relative_to(REPO_ROOT)}"
    return found[1]


# The Kubernetes each rendering is validated against; CI's cluster is the 1.20 the base targets.
SCHEMA_VERSIONS = {
    "base": OLDEST_SCHEMAS,
    "ci": OLDEST_SCHEMAS,
    "kind": kind_node_version(),
    "cloud": "1.31",
}
ON_KUBERNETES_1_20 = ("base", "ci")


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendering_validates_strictly_against_the_kubernetes_schemas(rendered, variant) -> None:
    assert variant in SCHEMA_VERSIONS, f"no Kubernetes version for k8s/{VARIANTS[variant]}"
    problems = []
    for doc in rendered[variant]:
        if doc["kind"] in CRD_KINDS:
            continue  # not in kubernetes-validate: checked structurally below
        try:
            kubernetes_validate.validate(doc, SCHEMA_VERSIONS[variant], strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")
    assert not problems, f"k8s {variant} vs {SCHEMA_VERSIONS[variant]}:\n" + "\n".join(problems)


@pytest.mark.parametrize("variant", ON_KUBERNETES_1_20)
def test_what_runs_on_kubernetes_1_20_uses_only_apis_it_serves(rendered, variant) -> None:
    used = {(doc["apiVersion"], doc["kind"]) for doc in rendered[variant]}
    assert used <= SERVED_BY_1_20, f"not served by Kubernetes 1.20: {used - SERVED_BY_1_20}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_namespaced_resource_is_in_the_platform_namespace(rendered, variant) -> None:
    for doc in rendered[variant]:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == NAMESPACE, doc["metadata"]["name"]


def test_no_kustomization_uses_deprecated_fields() -> None:
    files = list(K8S_DIR.rglob("kustomization.yaml"))
    assert len(files) >= 4
    for path in files:
        used = DEPRECATED_KUSTOMIZE_FIELDS & set(yaml.safe_load(path.read_text()))
        assert not used, f"{path.relative_to(REPO_ROOT)} uses deprecated {sorted(used)}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_secret_is_committed_or_rendered(rendered, variant) -> None:
    assert not of_kind(rendered[variant], "Secret")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_runs_read_only_tokenless_probed_and_bounded(rendered, variant) -> None:
    """Beyond Pod Security `restricted` (test_pod_security.py), which every pod meets too."""
    for name, pod in pod_specs(rendered[variant]).items():
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["readinessProbe"] and container["livenessProbe"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
            assert container["imagePullPolicy"] == "IfNotPresent", name


@pytest.mark.parametrize("variant", ["kind", "cloud"])
def test_monitoring_resources_are_well_formed_for_the_operator(rendered, variant) -> None:
    """kubernetes-validate has no schemas for the Prometheus operator's CRDs: the fields the
    operator requires, and the release label its selectors match, are checked here."""
    docs = rendered[variant]
    assert {doc["kind"] for doc in docs} >= CRD_KINDS
    for doc in of_kind(docs, *CRD_KINDS):
        assert doc["metadata"]["labels"]["release"] == RELEASE, doc["metadata"]["name"]
    services = of_kind(docs, "Service")
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        # The links the operator needs for a target (lab 17 breaks each): a Service in a
        # namespace it names carries the labels it selects, with a port of each endpoint's name.
        (service,) = [
            s
            for s in services
            if s["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
            and wanted.items() <= s["metadata"].get("labels", {}).items()
        ]
        port_names = {port.get("name") for port in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names, (monitor["metadata"]["name"], port_names)
            assert endpoint["path"].startswith("/")
            assert re.fullmatch(r"\d+(ms|s|m|h)", endpoint["interval"])
    for rule in of_kind(docs, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        for group in rule["spec"]["groups"]:
            assert group["name"] and group["rules"]
            for one in group["rules"]:
                # A recording rule (the rollout group's) is a name and an expression.
                required = {"record", "expr"} if "record" in one else {"alert", "expr", "for"}
                assert required <= set(one), one
                if "alert" in one:
                    assert {"labels", "annotations"} <= set(one), one["alert"]
    (config,) = of_kind(docs, "AlertmanagerConfig")
    assert config["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    spec = config["spec"]
    receivers = {receiver["name"] for receiver in spec["receivers"]}
    routes = [spec["route"], *spec["route"]["routes"]]
    assert {route["receiver"] for route in routes} <= receivers
    matchers = [m for r in spec["route"]["routes"] for m in r["matchers"]] + [
        m for rule in spec["inhibitRules"] for m in rule["sourceMatch"] + rule["targetMatch"]
    ]
    for matcher in matchers:
        assert set(matcher) == {"name", "value", "matchType"}
        assert matcher["matchType"] in {"=", "!=", "=~", "!~"}


def _dockerfiles() -> dict[str, str]:
    return {path.parent.name: path.read_text() for path in IMAGES_DIR.glob("*/Dockerfile")}


def test_images_build_from_debian_only_and_run_as_uid_10001() -> None:
    """Every stage starts FROM the BASE_IMAGE argument, which scripts/build-images.sh passes and
    which defaults to the same Debian in the Dockerfiles and in the script."""
    script = (REPO_ROOT / "scripts" / "build-images.sh").read_text()
    found = re.search(r"^BASE_IMAGE=\$\{BASE_IMAGE:-(\S+)\}$", script, flags=re.MULTILINE)
    assert found, "scripts/build-images.sh sets no default BASE_IMAGE"
    assert found[1] == BASE_IMAGE
    dockerfiles = _dockerfiles()
    assert set(dockerfiles) == {"platform", "postgres"}
    for name, text in dockerfiles.items():
        bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
        assert set(bases) == {"${BASE_IMAGE}"}, f"{name}: {bases}"
        # Declared before the first FROM, so every stage's FROM sees it.
        header = text[: text.index("\nFROM ")] + "\n"
        assert f"\nARG BASE_IMAGE={BASE_IMAGE}\n" in header, name
        assert re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)[-1] == "10001:10001", name


# The one package never run in a pod: the CLI, runtimes and labs run on the learner's machine.
ROOF = "mlops_lab"


def test_platform_image_installs_only_the_wheelhouse_and_every_package() -> None:
    """pip takes the wheelhouse's files only, and each only if its hash is in the requirements
    scripts/build-images.sh exported from uv.lock (the file images/wheelhouse.py picked from)."""
    dockerfile = _dockerfiles()["platform"]
    (install,) = re.findall(r"pip install ((?:[^\n]*\\\n)*[^\n]*)", dockerfile)
    options = install.replace("\\\n", " ").split("&&")[0].split()
    assert options == [
        "--no-cache-dir",
        "--no-index",
        "--find-links",
        "/wheels",
        "--require-hashes",
        "--requirement",
        "/wheels/requirements.txt",
    ]
    assert "COPY build/requirements.txt /wheels/requirements.txt" in dockerfile
    assert "COPY build/wheels /wheels" in dockerfile
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    found = re.search(r"packages = \[(.*?)\]", pyproject)
    assert found, "no `packages = [...]` in pyproject.toml"
    packages = set(found[1].replace('"', "").split(", ")) - {ROOF}
    dockerignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert f"COPY {ROOF} " not in dockerfile, f"{ROOF} runs on the learner's machine, not in a pod"
    for package in sorted(packages):
        assert f"COPY {package} ./{package}" in dockerfile, package
        assert f"!{package}" in dockerignore, f".dockerignore leaves {package} out of the context"


def _namespaced_for_checkov(documents: list[dict], variant: str) -> list[dict]:
    """checkov reports one resource per kind.namespace.name across all files: without a namespace
    of their own, the overlays' resources would hide behind the base's and go unchecked."""
    copies = json.loads(json.dumps(documents))
    for doc in copies:
        field = "name" if doc["kind"] == "Namespace" else "namespace"
        doc["metadata"][field] = f"{NAMESPACE}-{variant}"
    return copies


def test_checkov_passes_with_only_the_documented_skips(rendered, tmp_path: Path) -> None:
    for variant, documents in rendered.items():
        text = yaml.safe_dump_all(_namespaced_for_checkov(documents, variant))
        (tmp_path / f"{variant}.yaml").write_text(text)
    for name, text in _dockerfiles().items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(text)
    # uv runs checkov from its own locked environment (tools/checkov), as scripts/bootstrap.sh
    # creates it; offline (the config's skip-download, no update check).
    command = [*uv_command(), "run", "--project", "tools/checkov", "--frozen", "checkov"]
    result = subprocess.run(
        [*command, "--config-file", str(CHECKOV_CONFIG), "-d", str(tmp_path), "-o", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    assert result.stdout.lstrip().startswith(("[", "{")), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_framework = {report["check_type"]: report for report in reports}
    assert set(by_framework) == {"kubernetes", "dockerfile"}, result.stderr[-3000:]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed:\n" + "\n".join(failed)
    scanned = {
        check["file_path"].lstrip("/")
        for report in reports
        for check in report["results"]["passed_checks"]
    }
    expected = {f"{variant}.yaml" for variant in VARIANTS} | {
        f"{name}/Dockerfile" for name in _dockerfiles()
    }
    assert expected <= scanned, f"checkov did not check {expected - scanned}"
    for report in reports:
        assert report["summary"]["passed"] > 0, report["check_type"]

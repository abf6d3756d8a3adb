"""The platform's namespace enforces the Pod Security Standard `restricted`, and every pod template
in every rendering meets it. The API server would refuse a non-compliant pod on Kubernetes 1.25+
(kind, a managed cluster), but only when a Deployment creates it, long after `kubectl apply`
said "configured": checked here on the rendering instead, so a manifest cannot break it silently.
CI's Kubernetes 1.20 has no PodSecurity admission; the labels are inert there.

The checks follow the standard's controls (kubernetes.io/docs/concepts/security/
pod-security-standards/), baseline's included, for every container, init container and
ephemeral container."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlops_lab.runtime.kube.assets import NAMESPACE
from tests.k8s.conftest import VARIANTS, named

LEVEL = "restricted"
MODES = ("enforce", "audit", "warn")
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
CONFINED_SECCOMP = {"RuntimeDefault", "Localhost"}


def pod_templates(documents: list[dict]) -> Iterator[tuple[str, dict, dict]]:
    """(kind/name, pod metadata, pod spec) of every object that makes pods."""
    for doc in documents:
        kind, spec = doc["kind"], doc.get("spec", {})
        if kind == "Pod":
            template = {"metadata": doc["metadata"], "spec": spec}
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        elif "template" in spec and kind != "PodTemplate":
            template = spec["template"]
        else:
            continue
        yield f"{kind}/{doc['metadata']['name']}", template.get("metadata", {}), template["spec"]


def _containers(spec: dict) -> Iterator[dict]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def restricted_violations(metadata: dict, spec: dict) -> list[str]:
    """What keeps this pod out of a namespace that enforces `restricted` (empty: nothing)."""
    found = []
    pod = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{field}: true")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {', '.join(sorted(kinds - ALLOWED_VOLUMES))}")
    for sysctl in pod.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"{key}: {value}")
    found += [f"pod {problem}" for problem in _context_violations(pod)]
    for container in _containers(spec):
        context = container.get("securityContext") or {}
        name = f"container {container['name']}"
        found += [f"{name}: {problem}" for problem in _context_violations(context)]
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append(f"{name}: hostPort")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {context['procMount']}")
        # Set on the pod, or on every container: either satisfies the standard.
        if not (pod.get("runAsNonRoot") is True or context.get("runAsNonRoot") is True):
            found.append(f"{name}: runAsNonRoot is not true")
        seccomp = (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp not in CONFINED_SECCOMP:
            found.append(f"{name}: seccompProfile {seccomp or 'unset'}")
    return found


def _context_violations(context: dict) -> list[str]:
    """The controls a pod's and a container's securityContext share."""
    found = []
    if context.get("runAsNonRoot") is False:
        found.append("runAsNonRoot: false")
    if context.get("runAsUser") == 0:
        found.append("runAsUser: 0")
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        found.append("windowsOptions.hostProcess")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(f"seLinuxOptions {selinux}")
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("seccompProfile Unconfined")
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined":
        found.append("appArmorProfile Unconfined")
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_namespace_enforces_audits_and_warns_on_the_restricted_standard(rendered, variant) -> None:
    labels = named(rendered[variant], "Namespace", NAMESPACE)["metadata"].get("labels", {})
    for mode in MODES:
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == LEVEL, (variant, mode)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_meets_the_restricted_standard(rendered, variant) -> None:
    templates = list(pod_templates(rendered[variant]))
    assert len(templates) >= 6, f"k8s {variant}: the platform's workloads are missing"
    problems = {
        name: violations
        for name, metadata, spec in templates
        if (violations := restricted_violations(metadata, spec))
    }
    assert not problems, f"k8s {variant} would be refused under `restricted`: {problems}"


def test_the_restricted_check_names_each_violation(rendered) -> None:
    """The check is not vacuous: a copy of a compliant pod with one breach per control fails on
    each of them."""
    _, metadata, spec = next(pod_templates(rendered["base"]))
    assert not restricted_violations(metadata, spec)
    container = spec["containers"][0]
    broken = {
        **spec,
        "hostNetwork": True,
        "volumes": [*spec.get("volumes", []), {"name": "root", "hostPath": {"path": "/"}}],
        "initContainers": [{"name": "init", "image": container["image"]}],
        "containers": [
            {
                **container,
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "privileged": True,
                    "runAsUser": 0,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "seccompProfile": {"type": "Unconfined"},
                },
            }
        ],
    }
    found = "\n".join(restricted_violations(metadata, broken))
    for expected in (
        "hostNetwork",
        "volume root: hostPath",
        "container init: allowPrivilegeEscalation is not false",
        "container init: capabilities do not drop ALL",
        f"container {container['name']}: privileged",
        f"container {container['name']}: runAsUser: 0",
        f"container {container['name']}: adds capabilities",
        f"container {container['name']}: hostPort",
        f"container {container['name']}: seccompProfile Unconfined",
    ):
        assert expected in found, f"{expected!r} not reported:\n{found}"

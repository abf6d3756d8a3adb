"""What the Kubernetes-only labs read from the cluster: Deployments, pods, containers, events.

Checks read the objects (`kubectl get -o json`), the way a learner's `kubectl describe` would,
never how the fix was made.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from mlops_lab.lab_engine.golden import serving_answer
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.runtime.kube.kubectl import Kubectl
from mlops_lab.runtime.kube.rollout import rollout
from mlops_lab.runtime.kube.runtime import KubeRuntime
from platform_core.errors import PlatformError

SERVING = "serving"


def cluster(ctx: LabContext) -> KubeRuntime:
    if not isinstance(ctx.runtime, KubeRuntime):
        raise PlatformError(
            "This lab runs on Kubernetes, but the platform runs on the local runtime.",
            hint="`mlops-lab up --runtime kind`.",
        )
    return ctx.runtime


def kubectl(ctx: LabContext) -> Kubectl:
    return cluster(ctx).kubectl


def deployment(ctx: LabContext, name: str = SERVING) -> dict[str, Any]:
    return kubectl(ctx).get("deployment", name)


def container(deploy: dict[str, Any], name: str = SERVING) -> dict[str, Any]:
    """A Deployment's container, as its pod template has it."""
    return _named(deploy, deploy["spec"]["template"]["spec"], name)[1]


def pod_container(pod: dict[str, Any], name: str = SERVING) -> dict[str, Any]:
    """A pod's container, as the pod got it at admission (a LimitRange's defaults filled in)."""
    return _named(pod, pod["spec"], name)[1]


def container_path(deploy: dict[str, Any], name: str = SERVING) -> str:
    """The JSON pointer to a Deployment's container, for a JSON patch."""
    index = _named(deploy, deploy["spec"]["template"]["spec"], name)[0]
    return f"/spec/template/spec/containers/{index}"


def _named(owner: dict[str, Any], spec: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    for index, item in enumerate(spec["containers"]):
        if item["name"] == name:
            return index, item
    kind, called = owner.get("kind", "Object"), owner["metadata"]["name"]
    raise PlatformError(f"{kind} {called} has no container {name!r}.")


def pods(ctx: LabContext, app: str = SERVING) -> list[dict[str, Any]]:
    return kubectl(ctx).items("pods", selector=f"app.kubernetes.io/name={app}")


def serving_answers(ctx: LabContext, any_ready: bool) -> Condition:
    """One real prediction through the serving Service (skipped while no pod is ready)."""
    served, why = None, "/predict does not answer: no serving pod is ready"
    if any_ready:
        try:
            served, why = serving_answer(ctx)  # ctx.predict reconnects a broken port-forward
        except httpx.TransportError as error:
            why = f"/predict does not answer ({type(error).__name__}: {error})"
    return Condition.of(
        "serving answers", served is not None, f"/predict answers with v{served}", why
    )


def rolled_out(deploy: dict[str, Any]) -> tuple[bool, str]:
    return rollout(deploy)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def in_service(pod: dict[str, Any]) -> bool:
    """Ready and not on its way out: a terminating pod may still report Ready for its grace
    period, but its Service no longer sends it traffic."""
    return is_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("status", {}).get("containerStatuses", [])


def running_for_s(pod: dict[str, Any]) -> float:
    """Seconds since the pod's containers last (re)started: the shortest of them."""
    ages = []
    for status in statuses(pod):
        started = status.get("state", {}).get("running", {}).get("startedAt")
        if not started:
            return 0.0
        ages.append(
            time.time() - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        )
    return min(ages, default=0.0)


def waiting_reasons(pod_list: list[dict[str, Any]]) -> list[str]:
    return [
        s["state"]["waiting"].get("reason", "waiting")
        for pod in pod_list
        for s in statuses(pod)
        if "waiting" in s.get("state", {})
    ]


def oom_killed(pod_list: list[dict[str, Any]], since: float) -> list[str]:
    """Pods whose container was OOMKilled after ``since`` (epoch seconds)."""
    killed = []
    for pod in pod_list:
        for status in statuses(pod):
            for state in (status.get("lastState", {}), status.get("state", {})):
                terminated = state.get("terminated") or {}
                finished = terminated.get("finishedAt")
                if terminated.get("reason") == "OOMKilled" and finished:
                    at = datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
                    if at >= since:
                        killed.append(pod["metadata"]["name"])
    return killed


def current_hash(ctx: LabContext, deploy: dict[str, Any]) -> str | None:
    """pod-template-hash of the Deployment's newest ReplicaSet (the one its rollout creates)."""
    uid = deploy["metadata"]["uid"]
    revision = deploy["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
    for rs in kubectl(ctx).items("replicasets", selector=f"app.kubernetes.io/name={SERVING}"):
        owners = rs["metadata"].get("ownerReferences", [])
        annotations = rs["metadata"].get("annotations", {})
        if any(o.get("uid") == uid for o in owners) and (
            annotations.get("deployment.kubernetes.io/revision") == revision
        ):
            return rs["metadata"]["labels"].get("pod-template-hash")
    return None


def memory_bytes(quantity: str | None) -> float | None:
    """A Kubernetes memory quantity ("512Mi", "1G", "1e9") in bytes."""
    if not quantity:
        return None
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)

"""Lab 14: a "right-sizing" change leaves serving too little to start: it keeps restarting.

The variants vary what the change did. It cut the Deployment's memory limit below what importing
and loading the model needs (the kernel kills the container: OOMKilled); it replaced the
services' own resources with a namespace default, a LimitRange whose default limit is as small,
so the Deployment asks for nothing and the pod still gets the small limit at admission; or it cut
the CPU instead, to a sliver of a core a quiet week's average suggested, so the imports outlast
the startup probe's budget and the kubelet kills the container (exit 137 again, not OOMKilled).
The check is the same for all: serving rolled out, answering, up without a restart, and sized
from what it uses, limits read from the pods themselves, as admission gave them.
"""

from __future__ import annotations

import time
from typing import Any

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

# Where the change put the small size, of which resource, and what the debrief says of it.
VARIANTS = (
    {
        "where": "deployment",
        "resource": "memory",
        "size": "128Mi",
        "change": "set serving's memory limit (and request) to 128Mi in the Deployment",
        "killer": "the kernel's OOM killer, as soon as the container crossed its cgroup limit: "
        "`Last State: Terminated, Reason: OOMKilled, Exit Code: 137`",
    },
    {
        "where": "limitrange",
        "resource": "memory",
        "size": "128Mi",
        "change": "removed the services' own resources in favour of a namespace default: a "
        "LimitRange whose default memory limit is 128Mi. The Deployment asked for nothing, so "
        "admission gave the pod the default (`kubectl describe pod` shows the limit, and the "
        "annotation `kubernetes.io/limit-ranger` says who set it)",
        "killer": "the kernel's OOM killer, as soon as the container crossed the limit it got "
        "at admission: `Last State: Terminated, Reason: OOMKilled, Exit Code: 137`",
    },
    {
        "where": "deployment",
        "resource": "cpu",
        "size": "20m",
        "change": "set serving's CPU limit (and request) to 20m, two hundredths of a core, from a "
        "quiet week's average use",
        "killer": "the kubelet: throttled to 20m, the imports alone take minutes, longer than "
        "the startup probe waits (36 tries, 5 s apart), so the kubelet killed the container and "
        "started it again: `Last State: Terminated, Exit Code: 137` with `Reason: Error`, not "
        "OOMKilled, and events `Startup probe failed`",
    },
)
LIMIT_RANGE = "namespace-defaults"
STABLE_S = 30.0
# Headroom over the measured peak that a limit must leave to count as sized, not guessed: the
# debrief's +25 % (a load spike, a larger model next release).
HEADROOM = 1.25
# A ceiling far above what serving was given is no ceiling: at most this many times the
# manifest's own limit.
MAX_FACTOR = 4.0


def _resources_patch(resources: dict) -> dict:
    return {
        "spec": {
            "template": {"spec": {"containers": [{"name": kk.SERVING, "resources": resources}]}}
        }
    }


def start(ctx: LabContext, variant: dict) -> dict:
    deploy = kk.deployment(ctx)
    original = kk.container(deploy).get("resources", {})
    strategy = deploy["spec"].get("strategy", {})
    kubectl = kk.kubectl(ctx)
    # Recreate: the old pod goes first, so the outage is visible, as with a single replica.
    kubectl.patch(
        "deployment",
        kk.SERVING,
        {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}},
    )
    if variant["where"] == "limitrange":
        kubectl.apply(_limit_range(variant["size"]))
        kubectl.patch(
            "deployment",
            kk.SERVING,
            [{"op": "remove", "path": f"{kk.container_path(deploy)}/resources"}],
            patch_type="json",
        )
    else:
        small = {variant["resource"]: variant["size"]}
        kubectl.patch(
            "deployment", kk.SERVING, _resources_patch({"requests": small, "limits": small})
        )
    ctx.say(
        '[bold]Lab 14.[/] Alert: TargetDown (job=serving). Loan front end: "every application '
        'fails since the right-sizing change this morning."'
    )
    return {"resources": original, "strategy": strategy, "broken_at": time.time()}


def _limit_range(memory: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": LIMIT_RANGE, "labels": {"app.kubernetes.io/part-of": "mlops-lab"}},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"memory": memory},
                    "defaultRequest": {"memory": memory},
                }
            ]
        },
    }


def _pod_resources(ctx: LabContext, deploy: dict[str, Any], pods: list[dict]) -> dict:
    """The serving container's resources as the pods of the Deployment's current template got
    them at admission (a LimitRange fills in what the template leaves out); the template's own
    while no such pod runs (with `Recreate`, the old pods go before the new ReplicaSet exists)."""
    template = kk.container(deploy).get("resources", {})
    current = {
        rs["metadata"]["labels"].get("pod-template-hash")
        for rs in kk.kubectl(ctx).items(
            "replicasets", selector=f"app.kubernetes.io/name={kk.SERVING}"
        )
        if rs["spec"]["template"]["spec"] == deploy["spec"]["template"]["spec"]
        and any(
            o.get("uid") == deploy["metadata"]["uid"]
            for o in rs["metadata"].get("ownerReferences", [])
        )
    }
    for pod in pods:
        meta = pod["metadata"]
        if not meta.get("deletionTimestamp") and meta["labels"].get("pod-template-hash") in current:
            return kk.pod_container(pod).get("resources", {})
    return template


def _peak_bytes(ctx: LabContext) -> float | None:
    """The serving container's highest working set in the last hour, if Prometheus has it."""
    try:
        results = ctx.query(
            'max(max_over_time(container_memory_working_set_bytes{namespace="mlops-lab",'
            f'container="{kk.SERVING}"}}[1h]))'
        )
    except Exception:  # no kube-prometheus-stack on this cluster: the other conditions decide
        return None
    return results[0]["value"] if results else None


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    pods = kk.pods(ctx)
    ready = [p for p in pods if kk.in_service(p)]
    up_for = min((kk.running_for_s(p) for p in ready), default=0.0)
    killed = kk.oom_killed(pods, since=progress.state.get("broken_at", 0.0) + 1)
    resources = _pod_resources(ctx, deploy, pods)
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    peak = _peak_bytes(ctx)
    original = progress.state.get("resources", {})
    problems = sizing_problems(
        kk.memory_bytes(limits.get("memory")),
        peak,
        kk.memory_bytes(original.get("requests", {}).get("memory")),
        kk.memory_bytes(original.get("limits", {}).get("memory")),
    ) + cpu_problems(
        cpu_cores(limits.get("cpu")), cpu_cores(original.get("requests", {}).get("cpu"))
    )
    sized = f"memory limit {limits.get('memory')}, CPU " + (
        f"limit {limits['cpu']}" if "cpu" in limits else f"request {requests.get('cpu', '-')}"
    )
    return [
        Condition.of(
            "serving is rolled out and ready",
            done and bool(ready),
            f"Deployment serving: {description}",
            f"Deployment serving: {description}; pods waiting: "
            + (", ".join(kk.waiting_reasons(pods)) or "-"),
        ),
        kk.serving_answers(ctx, bool(ready)),
        Condition.of(
            "serving stays up",
            bool(ready) and up_for >= STABLE_S and not killed,
            f"running {up_for:.0f}s without a restart, no container killed since the fix",
            f"running {up_for:.0f}s since its last restart ({STABLE_S:.0f}s count as stable)"
            + (f"; killed for memory: {', '.join(sorted(set(killed)))}" if killed else ""),
        ),
        Condition.of(
            "serving has room for what it uses, under a ceiling",
            not problems,
            sized + (f", peak working set {peak / 2**20:.0f}Mi" if peak else ""),
            "; ".join(problems),
        ),
    ]


def sizing_problems(
    limit: float | None, peak: float | None, request: float | None, manifest_limit: float | None
) -> list[str]:
    """Why a memory limit is not a sized one (empty when it is): there must be one (it is the
    guard rail that keeps one pod from taking the node), it must leave headroom over the measured
    peak (or, with nothing measured, cover the manifest's own request), and it must stay a
    ceiling."""
    mib = 2**20
    if limit is None:
        return ["serving has no memory limit: one pod could take the whole node"]
    problems = []
    if peak is not None and limit < peak * HEADROOM:
        problems.append(
            f"{limit / mib:.0f}Mi is below the measured peak {peak / mib:.0f}Mi plus "
            f"{HEADROOM - 1:.0%} headroom"
        )
    if peak is None and request is not None and limit < request:
        problems.append(
            f"{limit / mib:.0f}Mi is below the manifest's request {request / mib:.0f}Mi"
        )
    if manifest_limit is not None and limit > manifest_limit * MAX_FACTOR:
        problems.append(
            f"{limit / mib:.0f}Mi is more than {MAX_FACTOR:g} times the manifest's "
            f"{manifest_limit / mib:.0f}Mi: a ceiling that high guards nothing"
        )
    return problems


def cpu_problems(limit: float | None, manifest_request: float | None) -> list[str]:
    """Why a CPU limit starves serving (empty when it does not). No CPU limit is a choice many
    platforms make (CPU is throttled, never killed for); a limit below what the manifest
    requests leaves serving less than it was sized to need to start within its probes."""
    if limit is None or manifest_request is None or limit >= manifest_request:
        return []
    return [
        f"a CPU limit of {limit * 1000:.0f}m is below the {manifest_request * 1000:.0f}m the "
        "manifest requests: throttled there, serving starts and answers too slowly"
    ]


def cpu_cores(quantity: str | None) -> float | None:
    """A Kubernetes CPU quantity ("250m", "1", "0.5") in cores."""
    if not quantity:
        return None
    if quantity.endswith("m"):
        return float(quantity[:-1]) / 1000
    return float(quantity)


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    pods = kk.pods(ctx)
    restarts = sum(s.get("restartCount", 0) for p in pods for s in kk.statuses(p))
    resources = "jsonpath='{.spec.template.spec.containers[0].resources}'"
    second = (
        "Look at `Last State` and its `Reason` and `Exit Code`, and at the events under them. "
        "The application log stays silent for this kind of death: why?"
    )
    third = {
        "deployment": "Exit code 137 is SIGKILL, and here the kernel sent it. Compare what the "
        f"container may use (`kubectl -n mlops-lab get deploy serving -o {resources}`) with "
        "what it used before (Grafana, container_memory_working_set_bytes).",
        "limitrange": "Exit code 137 is SIGKILL, and here the kernel sent it. The Deployment's "
        f"template asks for nothing (`kubectl -n mlops-lab get deploy serving -o {resources}`), "
        "yet `kubectl describe pod` shows the pod a limit: who gave it one? Look at the pod's "
        "annotations and at what the namespace holds besides Deployments.",
        "cpu": "Exit code 137 is SIGKILL, but no OOMKilled this time: the events say who ended "
        "the container, and after how long. Compare the CPU the container may use (`kubectl -n "
        f"mlops-lab get deploy serving -o {resources}`) with what starting serving takes "
        "(Grafana, container_cpu_usage_seconds_total; throttling: "
        "container_cpu_cfs_throttled_periods_total).",
    }["limitrange" if variant["where"] == "limitrange" else variant["resource"]]
    fourth = {
        "memory": "--requests=memory=512Mi --limits=memory=1536Mi",
        "cpu": "--requests=cpu=250m --limits=cpu=1",
    }[variant["resource"]]
    return [
        f"The serving pod has restarted {restarts} times. Ask Kubernetes why the last container "
        "ended: `kubectl -n mlops-lab describe pod -l app.kubernetes.io/name=serving`.",
        second,
        third,
        f"`kubectl -n mlops-lab set resources deploy/serving -c serving {fourth}` (a container's "
        "own resources take precedence over any namespace default), then `kubectl -n mlops-lab "
        "rollout status deploy/serving`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    _restore(ctx, progress)
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], 600, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The overlay's apply brings the Deployment's resources back, not a LimitRange it never
    had: that goes here, whatever the variant (nothing happens when there is none)."""
    if "resources" in progress.state:
        _restore(ctx, progress)
    kk.kubectl(ctx).run("delete", "limitrange", LIMIT_RANGE, "--ignore-not-found")


def _restore(ctx: LabContext, progress: LabProgress) -> None:
    kubectl = kk.kubectl(ctx)
    resources = progress.state["resources"]
    # Strategic merge matches the container by name and merges its resources back.
    kubectl.patch("deployment", kk.SERVING, _resources_patch(resources))
    strategy = progress.state.get("strategy") or {"type": "RollingUpdate"}
    kubectl.patch("deployment", kk.SERVING, {"spec": {"strategy": strategy}})

"""Lab 14: serving's memory limit is cut below what loading the model needs: OOMKilled."""

from __future__ import annotations

import time

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

BROKEN_MEMORY = "128Mi"
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


def start(ctx: LabContext) -> dict:
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
    small = {"requests": {"memory": BROKEN_MEMORY}, "limits": {"memory": BROKEN_MEMORY}}
    kubectl.patch("deployment", kk.SERVING, _resources_patch(small))
    ctx.say(
        '[bold]Lab 14.[/] Alert: TargetDown (job=serving). Loan front end: "every application '
        'fails since the right-sizing change this morning."'
    )
    return {"resources": original, "strategy": strategy, "broken_at": time.time()}


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
    ready = [p for p in pods if kk.is_ready(p)]
    up_for = min((kk.running_for_s(p) for p in ready), default=0.0)
    killed = kk.oom_killed(pods, since=progress.state.get("broken_at", 0.0) + 1)
    limit_text = kk.container(deploy).get("resources", {}).get("limits", {}).get("memory")
    limit = kk.memory_bytes(limit_text)
    peak = _peak_bytes(ctx)
    original = progress.state.get("resources", {})
    problems = sizing_problems(
        limit,
        peak,
        kk.memory_bytes(original.get("requests", {}).get("memory")),
        kk.memory_bytes(original.get("limits", {}).get("memory")),
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
            f"limit {limit_text}" + (f", peak working set {peak / 2**20:.0f}Mi" if peak else ""),
            "; ".join(problems),
        ),
    ]


def sizing_problems(
    limit: float | None, peak: float | None, request: float | None, manifest_limit: float | None
) -> list[str]:
    """Why a limit is not a sized one (empty when it is): there must be one (it is the guard
    rail that keeps one pod from taking the node), it must leave headroom over the measured peak
    (or, with nothing measured, cover the manifest's own request), and it must stay a ceiling."""
    mib = 2**20
    if limit is None:
        return ["serving has no limit: one pod could take the whole node"]
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


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    pods = kk.pods(ctx)
    restarts = sum(s.get("restartCount", 0) for p in pods for s in kk.statuses(p))
    return [
        f"The serving pod has restarted {restarts} times. Ask Kubernetes why the last container "
        "ended: `kubectl -n mlops-lab describe pod -l app.kubernetes.io/name=serving`.",
        "Look at `Last State` and its `Reason` and `Exit Code`. The application log stays silent "
        "for this kind of death: why?",
        "Exit code 137 is SIGKILL. Compare what the container may use "
        "(`kubectl -n mlops-lab get deploy serving -o jsonpath='{.spec.template.spec.containers[0]"
        ".resources}'`) with what it used before (Grafana, container_memory_working_set_bytes).",
        "`kubectl -n mlops-lab set resources deploy/serving -c serving "
        "--requests=memory=512Mi --limits=memory=1536Mi`, then `kubectl -n mlops-lab rollout "
        "status deploy/serving`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    _restore(ctx, progress)
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], 600, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    if "resources" in progress.state:
        _restore(ctx, progress)


def _restore(ctx: LabContext, progress: LabProgress) -> None:
    kubectl = kk.kubectl(ctx)
    resources = progress.state["resources"]
    # Strategic merge matches the container by name and merges its resources back.
    kubectl.patch("deployment", kk.SERVING, _resources_patch(resources))
    strategy = progress.state.get("strategy") or {"type": "RollingUpdate"}
    kubectl.patch("deployment", kk.SERVING, {"spec": {"strategy": strategy}})

"""Lab 14: serving's memory limit is cut below what loading the model needs: OOMKilled."""

from __future__ import annotations

import time

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

BROKEN_MEMORY = "128Mi"
STABLE_S = 30.0
# Headroom over the measured peak that a limit must leave to count as sized, not guessed.
HEADROOM = 1.1


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
    sized = limit is None or peak is None or limit >= peak * HEADROOM
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
            "serving has room for what it uses",
            sized,
            f"limit {limit_text or 'none'}"
            + (f", peak working set {peak / 2**20:.0f}Mi" if peak else ""),
            f"limit {limit_text} is below the measured peak {peak / 2**20:.0f}Mi plus headroom"
            if peak
            else "no measurement to compare with",
        ),
    ]


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

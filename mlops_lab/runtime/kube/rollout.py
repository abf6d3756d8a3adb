"""Deployments seen as the lab kit, `status` and `up` see processes: ready or not, and why."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mlops_lab.runtime.base import ProcessState, State
from mlops_lab.runtime.kube.kubectl import Kubectl
from platform_core.errors import PlatformError
from platform_core.waiting import TimedOut, poll

# Waiting reasons after which a pod will not become ready without a change.
STUCK = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}


def rollout(deployment: dict[str, Any]) -> tuple[bool, str]:
    """Is the rollout complete (every replica updated and available), and a short description."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    done = current and updated == want and available == want and total == want
    return done, f"{available}/{want} ready" + ("" if done else f", {updated} updated")


def pod_problems(pods: list[dict]) -> dict[str, str]:
    """app name → the first waiting/terminated reason of its pods (CrashLoopBackOff, OOMKilled…)."""
    problems: dict[str, str] = {}
    for pod in pods:
        app = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name", "")
        for container in pod.get("status", {}).get("containerStatuses", []):
            waiting = container.get("state", {}).get("waiting")
            last = container.get("lastState", {}).get("terminated")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                problems.setdefault(app, waiting["reason"])
            elif last and last.get("reason"):
                problems.setdefault(app, f"last exit: {last['reason']}")
    return problems


def processes(kubectl: Kubectl) -> dict[str, ProcessState]:
    """Each Deployment as a process: running once its rollout is complete, failed while a pod of
    it is stuck, else starting; ``started_at`` is the Deployment's creation, ``restarts`` its pods'
    container restarts."""
    pods = kubectl.items("pods")
    problems = pod_problems(pods)
    restarts: dict[str, int] = {}
    for pod in pods:
        app = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name", "")
        for container in pod.get("status", {}).get("containerStatuses", []):
            restarts[app] = restarts.get(app, 0) + int(container.get("restartCount", 0))
    found = {}
    for deployment in kubectl.items("deployments"):
        name = deployment["metadata"]["name"]
        done, description = rollout(deployment)
        if deployment.get("spec", {}).get("replicas", 1) == 0:
            state = State.stopped  # scaled to zero: its rollout is trivially "complete"
        elif done:
            state = State.running
        elif problems.get(name) in (*STUCK, "CrashLoopBackOff"):
            state = State.failed
        else:
            state = State.starting
        if name in problems:
            description += f" ({problems[name]})"
        created = deployment["metadata"].get("creationTimestamp")
        started = (
            datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() if created else None
        )
        found[name] = ProcessState(name, state, description, started, restarts.get(name, 0))
    return found


def wait_rollouts(
    kubectl: Kubectl, names: Sequence[str], timeout_s: float, console: Console
) -> None:
    """Poll the Deployments until each rollout completes; fail early on a pod that cannot start."""
    pending = list(names)
    progress = Progress(
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    tasks = {n: progress.add_task(f"{n}: rolling out", total=1) for n in names}
    failed: dict[str, str] = {}

    def settled() -> bool:
        """One look at the Deployments: update each pending line; True once none is pending."""
        found = {d["metadata"]["name"]: d for d in kubectl.items("deployments")}
        problems = pod_problems(kubectl.items("pods"))
        for name in list(pending):
            if name not in found:
                continue
            done, description = rollout(found[name])
            if done:
                pending.remove(name)
                progress.update(
                    tasks[name], description=f"{name}: [green]✓ {description}[/]", completed=1
                )
                if progress.disable:
                    console.print(f"{name}: rolled out ({description})", highlight=False)
            elif problems.get(name) in STUCK:
                pending.remove(name)
                failed[name] = problems[name]
            else:
                progress.update(tasks[name], description=f"{name}: {description}")
        return not pending

    with progress, contextlib.suppress(TimedOut):  # what is still pending is reported below
        poll(settled, timeout_s, every_s=2, tolerate=())
    for name in pending:
        failed[name] = f"not rolled out after {timeout_s:.0f}s"
    if failed:
        lines = [f"{name}: {why}" for name, why in failed.items()]
        raise PlatformError(
            "Some Deployments did not roll out:\n" + "\n".join(lines),
            hint="`kubectl -n mlops-lab describe deploy NAME` and `kubectl -n mlops-lab get events "
            "--sort-by=.lastTimestamp` say why; `mlops-lab logs NAME` shows the container's log.",
        )

"""Lab 15: the release's readiness probe asks a path serving does not have: the rollout stalls."""

from __future__ import annotations

import time

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

BROKEN_PATH = "/ready"
# A short deadline so the Deployment reports the stall within the lab, not after 10 minutes.
DEADLINE_S = 120


def _probe_patch(probe: dict, stamp: str) -> dict:
    return {
        "spec": {
            "progressDeadlineSeconds": DEADLINE_S,
            "template": {
                # The release: a new pod template, as a new image or setting would make.
                "metadata": {"annotations": {"mlops-lab/release": stamp}},
                "spec": {"containers": [{"name": kk.SERVING, "readinessProbe": probe}]},
            },
        }
    }


def start(ctx: LabContext) -> dict:
    deploy = kk.deployment(ctx)
    original = kk.container(deploy).get("readinessProbe")
    broken = {"httpGet": {"path": BROKEN_PATH, "port": "http"}, "periodSeconds": 5}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kk.kubectl(ctx).patch("deployment", kk.SERVING, _probe_patch(broken, stamp))
    ctx.say(
        '[bold]Lab 15.[/] Release manager: "the CD job timed out on `kubectl rollout status '
        'deploy/serving`; is the new serving release live or not?"'
    )
    return {
        "probe": original,
        "deadline": deploy["spec"].get("progressDeadlineSeconds", 600),
        "release": stamp,
    }


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    newest = kk.current_hash(ctx, deploy)
    pods = kk.pods(ctx)
    ready = [p for p in pods if kk.is_ready(p)]
    old = [p for p in ready if p["metadata"]["labels"].get("pod-template-hash") != newest]
    release = deploy["spec"]["template"]["metadata"].get("annotations", {}).get("mlops-lab/release")
    probe = kk.container(deploy).get("readinessProbe")
    return [
        Condition.of(
            "the rollout is complete",
            done,
            f"Deployment serving: {description}",
            f"Deployment serving: {description} (`kubectl rollout status` would still wait)",
        ),
        Condition.of(
            "the new release serves",
            bool(ready) and not old and release == progress.state.get("release"),
            "every ready serving pod belongs to the newest ReplicaSet of the release",
            f"{len(old)} ready pod(s) of an older ReplicaSet still serve"
            if release == progress.state.get("release")
            else "the release was rolled back: get it out instead",
        ),
        Condition.of(
            "serving can still say when it is not ready",
            probe is not None,
            "the serving container has a readiness probe",
            "the serving container has no readiness probe: a pod that cannot answer would get "
            "traffic",
        ),
        kk.serving_answers(ctx, bool(ready)),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    return [
        "Is the new release running at all? `kubectl -n mlops-lab get rs,pods -l "
        "app.kubernetes.io/name=serving`: compare the ReplicaSets' READY columns.",
        "The newest pod runs but is not Ready. `kubectl -n mlops-lab describe pod <it>`: the "
        "events say what Kubernetes asks the pod, and what it answers.",
        "Serving answers `/livez`, `/readyz` and `/healthz`. What does the release ask? "
        "`kubectl -n mlops-lab get deploy serving -o jsonpath="
        "'{.spec.template.spec.containers[0].readinessProbe}'`",
        "`kubectl -n mlops-lab patch deploy serving --patch "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"serving","readinessProbe":'
        '{"httpGet":{"path":"/livez","port":"http"}}}]}}}}\'`, then `kubectl -n mlops-lab '
        "rollout status deploy/serving`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    probe = progress.state.get("probe") or {"httpGet": {"path": "/livez", "port": "http"}}
    kk.kubectl(ctx).patch(
        "deployment",
        kk.SERVING,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": kk.SERVING, "readinessProbe": probe}]}
                }
            }
        },
    )
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], 600, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The overlay's apply (golden.restore) brings the probe back; the deadline and the release
    annotation are not in the manifest, so they go here."""
    if "deadline" in progress.state:
        kk.kubectl(ctx).patch(
            "deployment",
            kk.SERVING,
            [
                {
                    "op": "replace",
                    "path": "/spec/progressDeadlineSeconds",
                    "value": progress.state["deadline"],
                },
            ],
            patch_type="json",
        )

"""Lab 15: the release's readiness probe asks a path serving does not have: the rollout stalls."""

from __future__ import annotations

import time

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

BROKEN_PATH = "/ready"
# The one path that answers "not ready" while serving has no model to answer with.
READY_PATH = "/readyz"
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
    probe = kk.container(deploy).get("readinessProbe")
    asks = _asks(probe)
    return [
        Condition.of(
            "the rollout is complete",
            done,
            f"Deployment serving: {description}",
            f"Deployment serving: {description} (`kubectl rollout status` would still wait)",
        ),
        # `kubectl rollout undo` is a right mitigation too: the newest ReplicaSet is then the
        # last good one again, and it alone serves.
        Condition.of(
            "one release serves, all of it",
            bool(ready) and not old,
            "every ready serving pod belongs to the newest ReplicaSet",
            f"{len(old)} ready pod(s) of an older ReplicaSet still serve",
        ),
        Condition.of(
            "serving can still say when it is not ready",
            asks == READY_PATH,
            f"the readiness probe asks {READY_PATH}, which fails while no model is loaded",
            "the serving container has no readiness probe: a pod that cannot answer would get "
            "traffic"
            if probe is None
            else f"the readiness probe asks {asks}: it passes while the pod has no model to "
            "answer with",
        ),
        kk.serving_answers(ctx, bool(ready)),
    ]


def _asks(probe: dict | None) -> str:
    """What the readiness probe asks: an HTTP path, or the kind of probe it is instead (an exec
    or a TCP check says nothing about the model)."""
    if not probe:
        return "nothing"
    if "httpGet" in probe:
        return str(probe["httpGet"].get("path", "/"))
    kind = next((k for k in ("exec", "tcpSocket", "grpc") if k in probe), "something else")
    return f"{kind} (not an HTTP path)"


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    return [
        "Is the new release running at all? `kubectl -n mlops-lab get rs,pods -l "
        "app.kubernetes.io/name=serving`: compare the ReplicaSets' READY columns.",
        "The newest pod runs but is not Ready. `kubectl -n mlops-lab describe pod <it>`: the "
        "events say what Kubernetes asks the pod, and what it answers.",
        "Serving answers `/livez`, `/readyz` and `/healthz`; only one of them fails while it has "
        "no model to answer with. What does the release ask? "
        "`kubectl -n mlops-lab get deploy serving -o jsonpath="
        "'{.spec.template.spec.containers[0].readinessProbe}'`",
        "`kubectl -n mlops-lab patch deploy serving --patch "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"serving","readinessProbe":'
        '{"httpGet":{"path":"/readyz","port":"http"}}}]}}}}\'`, then `kubectl -n mlops-lab '
        "rollout status deploy/serving`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    probe = progress.state.get("probe") or {"httpGet": {"path": READY_PATH, "port": "http"}}
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

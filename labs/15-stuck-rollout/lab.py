"""Lab 15: the release's readiness probe asks a question serving cannot answer yes to: the
rollout stalls while the old pod keeps serving.

The variants vary what the release got wrong in the probe: a path serving does not serve, a
port nothing in the pod listens on, or TLS, which serving does not speak. Each fails at every
probe, so the new pod never turns Ready. The check is the same for all: the rollout completes,
one release serves, and the readiness probe still asks serving's own readiness (GET /readyz over
HTTP on its port), so Kubernetes can tell a pod without its model from one with it.
"""

from __future__ import annotations

import time
from typing import Any

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

# Which field of the probe's httpGet the release set wrong, to what, what the pod's events then
# say at each probe, and what the debrief says of it.
VARIANTS = (
    {
        "field": "path",
        "wrong": "/ready",
        "asks": "GET /ready",
        "error": "HTTP probe failed with statuscode: 404",
        "what": "a path BentoML does not serve (its endpoints are `/livez`, `/readyz` and "
        "`/healthz`)",
    },
    {
        "field": "port",
        "wrong": "8080",
        "asks": "GET /readyz on port 8080",
        "error": "connect: connection refused",
        "what": "a port nothing in the pod listens on (serving listens on 3000, the container "
        "port named `http`): the release template came from a service with a separate admin port",
    },
    {
        "field": "scheme",
        "wrong": "HTTPS",
        "asks": "GET /readyz over HTTPS",
        "error": "http: server gave HTTP response to HTTPS client",
        "what": "TLS, which serving does not speak (TLS ends in front of it, at the ingress): the "
        "release template came from a service that terminates TLS itself",
    },
)
# The one question only a pod with its model loaded answers yes to, as the manifest asks it.
READY_PATH = "/readyz"
READY_GET = {"path": READY_PATH, "port": "http", "scheme": "HTTP"}
PERIOD_S = 5  # the manifest's
# A short deadline so the Deployment reports the stall within the lab, not after 10 minutes.
DEADLINE_S = 120


def _probe_patch(get: dict[str, Any], stamp: str | None = None) -> dict:
    """A patch of the serving container's readiness probe's httpGet (strategic merge: the
    fields given replace theirs, the others stay); with ``stamp``, a new release of the pod
    template, as a new image or setting would make."""
    template: dict[str, Any] = {
        "spec": {"containers": [{"name": kk.SERVING, "readinessProbe": {"httpGet": get}}]}
    }
    spec: dict[str, Any] = {"template": template}
    if stamp is not None:
        template["metadata"] = {"annotations": {"mlops-lab/release": stamp}}
        spec["progressDeadlineSeconds"] = DEADLINE_S
    return {"spec": spec}


def _wrong_get(variant: dict) -> dict[str, Any]:
    wrong: Any = int(variant["wrong"]) if variant["field"] == "port" else variant["wrong"]
    return {**READY_GET, variant["field"]: wrong}


def start(ctx: LabContext, variant: dict) -> dict:
    deploy = kk.deployment(ctx)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kk.kubectl(ctx).patch("deployment", kk.SERVING, _probe_patch(_wrong_get(variant), stamp))
    ctx.say(
        '[bold]Lab 15.[/] Release manager: "the CD job timed out on `kubectl rollout status '
        'deploy/serving`; is the new serving release live or not?"'
    )
    return {
        "deadline": deploy["spec"].get("progressDeadlineSeconds", 600),
        "release": stamp,
    }


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    newest = kk.current_hash(ctx, deploy)
    pods = kk.pods(ctx)
    ready = [p for p in pods if kk.in_service(p)]
    old = [p for p in ready if p["metadata"]["labels"].get("pod-template-hash") != newest]
    container = kk.container(deploy)
    probe = container.get("readinessProbe")
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
            asks_readiness(probe, container),
            f"the readiness probe asks {asks}, which fails while no model is loaded",
            "the serving container has no readiness probe: a pod that cannot answer would get "
            "traffic"
            if probe is None
            else f"the readiness probe asks {asks}: not a question only a pod with its model "
            "loaded answers yes to",
        ),
        kk.serving_answers(ctx, bool(ready)),
    ]


def _asks(probe: dict | None) -> str:
    """What the readiness probe asks: an HTTP request, or the kind of probe it is instead (an
    exec or a TCP check says nothing about the model)."""
    if not probe:
        return "nothing"
    if "httpGet" in probe:
        get = probe["httpGet"]
        scheme, path, port = get.get("scheme", "HTTP"), get.get("path", "/"), get.get("port")
        return f"GET {path} over {scheme} on port {port}"
    kind = next((k for k in ("exec", "tcpSocket", "grpc") if k in probe), "something else")
    return f"{kind} (not an HTTP request)"


def asks_readiness(probe: dict | None, container: dict) -> bool:
    """Whether the probe asks serving's readiness: GET /readyz over HTTP on the port serving
    listens on (by its name or its number)."""
    get = (probe or {}).get("httpGet")
    if not get:
        return False
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    port = get.get("port")
    return (
        get.get("path") == READY_PATH
        and str(get.get("scheme", "HTTP")).upper() == "HTTP"
        and ports.get("http") is not None
        and ports.get(port, port) in (ports["http"], str(ports["http"]))
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    field = variant_of(VARIANTS, progress.state)["field"]
    third = {
        "path": "Serving answers `/livez`, `/readyz` and `/healthz`; only one of them fails while "
        "it has no model to answer with. Which path does the release ask?",
        "port": "Which port does serving listen on (the container's `ports`), and which one does "
        "the release's probe knock on?",
        "scheme": "Does serving speak TLS? Compare the probe's scheme with what `curl` gets from "
        "the pod's port (`kubectl -n mlops-lab port-forward`).",
    }[field]
    return [
        "Is the new release running at all? `kubectl -n mlops-lab get rs,pods -l "
        "app.kubernetes.io/name=serving`: compare the ReplicaSets' READY columns.",
        "The newest pod runs but is not Ready. `kubectl -n mlops-lab describe pod <it>`: the "
        "events say what Kubernetes asks the pod, and what it answers.",
        f"{third} `kubectl -n mlops-lab get deploy serving -o jsonpath="
        "'{.spec.template.spec.containers[0].readinessProbe}'`",
        "`kubectl -n mlops-lab patch deploy serving --patch "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"serving","readinessProbe":'
        '{"httpGet":{"path":"/readyz","port":"http","scheme":"HTTP"}}}]}}}}\'`, then '
        "`kubectl -n mlops-lab rollout status deploy/serving`.",
    ]


def _restore_probe(ctx: LabContext) -> None:
    """The manifest's readiness probe, whole: a merge would keep a field the manifest leaves to
    its default (the scheme) or a handler a learner put in its place (a TCP check beside
    httpGet is refused by the API)."""
    where = f"{kk.container_path(kk.deployment(ctx))}/readinessProbe"
    probe = {"httpGet": READY_GET, "periodSeconds": PERIOD_S}
    kk.kubectl(ctx).patch(
        "deployment", kk.SERVING, [{"op": "add", "path": where, "value": probe}], patch_type="json"
    )


def solve(ctx: LabContext, progress: LabProgress) -> None:
    _restore_probe(ctx)
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], 600, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The overlay's apply (golden.restore) brings the probe's path and port back, not a field
    the manifest leaves to its default (the scheme), nor the deadline: those go here."""
    kubectl = kk.kubectl(ctx)
    _restore_probe(ctx)
    if "deadline" in progress.state:
        kubectl.patch(
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

"""Lab 26: a NetworkPolicy change cuts serving off from MLflow; the old model keeps answering.

Serving loads the champion from MLflow when it starts and polls the alias every few seconds. Cut
off, a running pod keeps its last model and says so only in its log and its
``serving_registry_reachable`` gauge: nothing errors, so the first to notice is whoever promoted
a model that never arrives. A new pod (a restart, a rollout, a rescheduled node) cannot load any
model and never gets ready, while the old one keeps answering.

The variants vary where the cut comes from:
1. a least-privilege rewrite: MLflow taken out of the shared HTTP policy and given its own,
   whose allow-list names the pipelines and the drift monitor and forgets serving;
2. an egress lock-down of serving: DNS, the database and the monitoring namespace, not MLflow
   (where the cluster already limits egress, the namespace-wide allow is narrowed past serving);
3. the same rewrite with serving on the list, selected by a label its pods do not carry.

The check is on outcomes: serving rolled out, every pod ready and answering with the champion
the registry names, each serving pod able to open a connection to MLflow (a call from inside the
pod), and the isolation kept: a pod of another namespace still cannot open a connection to
MLflow or PostgreSQL. Deleting the policies, opening MLflow to everything or restarting serving
does not pass; any change that lets serving in and keeps the rest closed does.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.golden import register_release, served_version
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from mlops_lab.runtime.kube.kubectl import Kubectl, KubectlError

NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
SHARED = "http-from-platform-and-monitoring"  # the base's policy for the HTTP services
PLATFORM_HTTP = ["mlflow", "prefect", "flows", "serving", "drift-monitor", "alert-receiver"]
MLFLOW_CLIENTS = ["prefect", "flows", "drift-monitor"]
# Where the cluster limits egress (the egress component: kind, cloud), every pod may call the
# platform's others through this policy; variant 2 narrows it past serving.
WITHIN_CLUSTER = "egress-within-cluster"
MONITORING = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}

REWRITE = "rewrite"
EGRESS = "egress"
SELECTOR = "selector"
VARIANTS = (
    {
        "change": REWRITE,
        "how": "a least-privilege rewrite took MLflow out of the shared HTTP policy and gave it "
        "its own, mlflow-from-clients, whose allow-list names Prefect, the flows and the drift "
        "monitor, and not serving",
        "fix": "add serving to mlflow-from-clients' list (`kubectl -n mlops-lab edit "
        "networkpolicy mlflow-from-clients`)",
    },
    {
        "change": EGRESS,
        "how": "an egress lock-down gave serving its own egress policy, serving-egress: DNS, "
        "PostgreSQL for the prediction log and the monitoring namespace, and not MLflow",
        "fix": "add an egress rule to serving-egress for the pods app.kubernetes.io/name=mlflow on "
        "port http",
    },
    {
        "change": SELECTOR,
        "how": "a least-privilege rewrite gave MLflow its own policy, mlflow-from-clients, which "
        "admits serving by app.kubernetes.io/component=inference; serving's pods carry "
        "app.kubernetes.io/component=serving, so the rule selects none of them",
        "fix": "select serving by a label its pods carry (app.kubernetes.io/component=serving, or "
        "app.kubernetes.io/name=serving)",
    },
)
# The release the quality gate promoted this morning: trained like the champion, another seed.
RELEASE_SEED = 2026
RELEASE = "weekly-retrain"
CUT_S = 90.0
SERVED_S = 120.0
# A pod of another namespace the check tries MLflow and PostgreSQL from.
NEIGHBOUR = "mlops-lab-neighbour"
NEIGHBOUR_NAMESPACE = "default"
CONNECT_S = 3.0
# How long a pod just started is given before a connection it got through counts (see
# neighbour_reaches).
NEW_POD_SETTLE_S = 3.0
TRY_MLFLOW = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://mlflow:5000/health', timeout=3).status)"
)
TRY_CONNECT = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def reach(target):
    try:
        socket.create_connection(tuple(target), timeout=float(sys.argv[2])).close()
        return "open"
    except OSError as error:
        return type(error).__name__
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(dict(zip(targets, pool.map(reach, targets.values())))))
"""


# ---- the policies ------------------------------------------------------------------------------


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlops-lab"}},
        "spec": spec,
    }


def _names(*names: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": NAME, "operator": "In", "values": list(names)}]}


def _shared_without_mlflow() -> dict[str, Any]:
    return _policy(
        SHARED,
        {
            "podSelector": _names(*[n for n in PLATFORM_HTTP if n != "mlflow"]),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {}}, {"namespaceSelector": MONITORING}],
                    "ports": [{"port": "http"}],
                }
            ],
        },
    )


def _mlflow_from_clients(serving_peer: dict[str, Any] | None) -> dict[str, Any]:
    peers = [{"podSelector": _names(*MLFLOW_CLIENTS)}]
    if serving_peer is not None:
        peers.append({"podSelector": serving_peer})
    peers.append({"namespaceSelector": MONITORING})
    return _policy(
        "mlflow-from-clients",
        {
            "podSelector": {"matchLabels": {NAME: "mlflow"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"port": "http"}]}],
        },
    )


def _serving_egress(fixed: bool) -> dict[str, Any]:
    dns = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    rules = [
        {"ports": dns},
        {"to": [{"podSelector": {"matchLabels": {NAME: "postgres"}}}], "ports": [{"port": 5432}]},
        {"to": [{"namespaceSelector": MONITORING}]},
    ]
    if fixed:
        rules.append(
            {
                "to": [{"podSelector": {"matchLabels": {NAME: "mlflow"}}}],
                "ports": [{"port": "http"}],
            }
        )
    return _policy(
        "serving-egress",
        {
            "podSelector": {"matchLabels": {NAME: "serving"}},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    )


def _others_egress(kubectl: Kubectl) -> dict[str, Any] | None:
    """The namespace-wide egress allow, narrowed past serving (variant 2 where it exists)."""
    if not kubectl.exists("networkpolicy", WITHIN_CLUSTER):
        return None
    policy = kubectl.get("networkpolicy", WITHIN_CLUSTER)
    spec = dict(policy["spec"])
    spec["podSelector"] = {
        "matchExpressions": [{"key": NAME, "operator": "NotIn", "values": ["serving"]}]
    }
    return _policy(WITHIN_CLUSTER, spec)


def broken(variant: dict[str, Any], kubectl: Kubectl) -> list[dict[str, Any]]:
    """What the variant's change applies."""
    if variant["change"] == REWRITE:
        return [_mlflow_from_clients(None), _shared_without_mlflow()]
    if variant["change"] == SELECTOR:
        wrong = {"matchLabels": {COMPONENT: "inference"}}
        return [_mlflow_from_clients(wrong), _shared_without_mlflow()]
    narrowed = _others_egress(kubectl)
    return [_serving_egress(fixed=False), *([narrowed] if narrowed else [])]


def fixed(variant: dict[str, Any]) -> dict[str, Any]:
    """The reference fix: the variant's policy, letting serving through."""
    if variant["change"] == EGRESS:
        return _serving_egress(fixed=True)
    return _mlflow_from_clients({"matchLabels": {NAME: "serving"}})


# ---- start -------------------------------------------------------------------------------------


def registry_reachable(ctx: LabContext) -> bool | None:
    """What serving's gauge says (the pod the host's forward reaches); None: no answer yet."""
    from platform_core import http_calls

    try:
        text = http_calls.get(f"{ctx.serving_url}/metrics", timeout=10).text
    except httpx.TransportError:
        ctx.runtime.reconnect()  # a forward bound to a pod that went away
        return None
    for line in text.splitlines():
        if line.startswith("serving_registry_reachable"):
            return float(line.split()[-1]) == 1.0
    return None


def start(ctx: LabContext, variant: dict) -> dict:
    from pipelines import data, registry

    kubectl = kk.kubectl(ctx)
    before = ctx.require_champion()
    kubectl.apply(broken(variant, kubectl))
    # The change went out first; the release is trained and registered (the alias does not move
    # yet) while serving's next poll waits out its timeout.
    with contextlib.redirect_stdout(io.StringIO()):
        released = register_release(
            ctx, data.generate(4_000, "baseline", seed=RELEASE_SEED), RELEASE_SEED, RELEASE
        )
    version = str(released.version)
    ctx.wait_until(lambda: registry_reachable(ctx) is False, CUT_S, "the change to take effect")
    registry.record_decision(
        ctx.mlflow, ctx.settings, version, True, "beat the champion on held-out rows"
    )
    registry.promote(ctx.mlflow, ctx.settings, version, by="quality gate")
    ctx.say(
        f'[bold]Lab 26.[/] Data science: "the quality gate promoted v{version} minutes ago and '
        f"the registry shows it as champion, but every prediction still says model_version "
        f'{before.version}. Nothing errors. Can you look?"'
    )
    return {}


# ---- check -------------------------------------------------------------------------------------


def _running(ctx: LabContext) -> list[dict[str, Any]]:
    return [
        p
        for p in kk.pods(ctx)
        if p.get("status", {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]


def reaches_mlflow(ctx: LabContext, pod: str) -> tuple[bool, str]:
    """A call to MLflow from inside a serving pod, as serving makes it (by Service name)."""
    result = kk.kubectl(ctx).run(
        "exec", pod, "-c", kk.SERVING, "--", "python", "-c", TRY_MLFLOW, check=False, timeout_s=30
    )
    if result.returncode == 0 and result.stdout.strip() == "200":
        return True, ""
    said = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("command terminated")
    ]
    return False, (said or ["no answer"])[-1][-160:]


def _neighbour(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": NEIGHBOUR,
            "labels": {NAME: "neighbour", "app.kubernetes.io/part-of": "mlops-lab"},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": 3600,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(3600)"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def neighbour_reaches(ctx: LabContext) -> dict[str, str] | str:
    """From a pod of another namespace: each of MLflow and PostgreSQL "open" or the error a
    connection to its Service got; a string when the pod could not be had.

    Kubernetes does not promise that a pod is under the policies the moment it is ready: the
    network plugin applies them once it learns of the pod, and an address a deleted pod held
    may still carry that pod's rights for a moment. So a connection that gets through from the
    pod just started is tried again, a few seconds later, before it counts."""
    kubectl = kk.kubectl(ctx)
    outside = Kubectl(kubectl.kubeconfig, namespace=NEIGHBOUR_NAMESPACE)
    found = outside.run("get", "pod", NEIGHBOUR, "-o", "json", check=False)
    pod = json.loads(found.stdout) if found.returncode == 0 else None
    usable = (
        pod is not None
        and pod["status"].get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    )
    fresh = not usable
    if fresh:
        try:
            if pod is not None:  # finished, or on its way out (a reset)
                outside.run("delete", "pod", NEIGHBOUR, "--ignore-not-found", timeout_s=120)
            outside.create(_neighbour(kk.container(kk.deployment(ctx))["image"]))
            outside.run(
                "wait", "--for=condition=Ready", f"pod/{NEIGHBOUR}", "--timeout=120s", timeout_s=130
            )
        except KubectlError:  # said in the condition; the next check tries again
            return f"no pod of namespace {NEIGHBOUR_NAMESPACE} could be started to try from"
    targets = {}
    for name in ("mlflow", "postgres"):
        service = kubectl.get("service", name)["spec"]
        targets[name] = [service["clusterIP"], service["ports"][0]["port"]]
    reached = _try_from(outside, targets)
    if fresh and isinstance(reached, dict) and "open" in reached.values():
        time.sleep(NEW_POD_SETTLE_S)
        reached = _try_from(outside, targets)
    return reached


def _try_from(outside: Kubectl, targets: dict[str, list]) -> dict[str, str] | str:
    result = outside.run(
        "exec", NEIGHBOUR, "--", "python", "-c", TRY_CONNECT, json.dumps(targets), str(CONNECT_S),
        check=False, timeout_s=60,
    )  # fmt: skip
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return f"the try from namespace {NEIGHBOUR_NAMESPACE} failed: {result.stderr[-200:]}"


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    running = _running(ctx)
    unready = [p["metadata"]["name"] for p in running if not kk.is_ready(p)]
    champion = ctx.champion()
    wanted = str(champion.version) if champion is not None else None
    served = served_version(ctx) if running and len(unready) < len(running) else None
    # Each try waits out a timeout when the path is cut: side by side.
    with ThreadPoolExecutor(len(running) + 1) as pool:
        outside_try = pool.submit(neighbour_reaches, ctx)
        names = [p["metadata"]["name"] for p in running]
        reached = dict(
            zip(names, pool.map(lambda pod: reaches_mlflow(ctx, pod), names), strict=True)
        )
        outside = outside_try.result()
    cut = {pod: why for pod, (ok, why) in reached.items() if not ok}
    if isinstance(outside, str):
        open_to = None
    else:
        open_to = [name for name, how in outside.items() if how == "open"]
    return [
        Condition.of(
            "serving is rolled out and every pod is ready",
            done and bool(running) and not unready,
            f"Deployment serving: {description}",
            f"Deployment serving: {description}"
            + (f"; not ready: {', '.join(unready)}" if unready else ""),
        ),
        Condition.of(
            "serving answers with the champion",
            served is not None and served == wanted,
            f"/predict answers with v{served}, the champion",
            f"/predict answers with {'v' + served if served else 'nothing'}; the registry's "
            f"champion is v{wanted}",
        ),
        Condition.of(
            "every serving pod reaches MLflow",
            bool(reached) and not cut,
            f"{len(reached)} pod(s) get MLflow's /health",
            "; ".join(f"{pod}: {why}" for pod, why in cut.items()) or "no serving pod runs",
        ),
        Condition.of(
            "MLflow and PostgreSQL stay out of reach from other namespaces",
            open_to == [],
            f"from namespace {NEIGHBOUR_NAMESPACE}: {outside}",
            outside
            if isinstance(outside, str)
            else f"a pod of namespace {NEIGHBOUR_NAMESPACE} opens a connection to "
            + ", ".join(open_to or []),
        ),
    ]


# ---- hints, solve, reset -----------------------------------------------------------------------


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    third = {
        REWRITE: "Which of them select MLflow's pods, and whom do they let in? "
        "`kubectl -n mlops-lab describe networkpolicy`",
        EGRESS: "Which of them select serving's pods, and in which direction? "
        "`kubectl -n mlops-lab describe networkpolicy`",
        SELECTOR: "Read each rule that should let serving in next to serving's labels: "
        "`kubectl -n mlops-lab describe networkpolicy` and "
        "`kubectl -n mlops-lab get pods --show-labels`",
    }[variant["change"]]
    return [
        "Which version does serving answer with, and which does the registry call champion? "
        "`mlops-lab model list`, then what serving says about the registry: "
        "`kubectl -n mlops-lab logs deploy/serving --tail=20`.",
        "MLflow answers you. Does it answer serving? Ask from inside: `kubectl -n mlops-lab "
        f'exec deploy/serving -- python -c "{TRY_MLFLOW}"`, and the same from `deploy/flows`. '
        "A connection that never completes (a timeout, not a refusal) is dropped on the way.",
        "What decides which pod may open a connection to which: `kubectl -n mlops-lab get "
        f"networkpolicy`. {third}.",
        f"Let serving through and keep the rest closed: {variant['fix']}; or add a policy of "
        "your own that lets serving's pods reach MLflow on port http. Not: deleting the "
        "policies, or opening MLflow to every pod of the cluster.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    variant = variant_of(VARIANTS, progress.state)
    kk.kubectl(ctx).apply(fixed(variant))
    champion = ctx.require_champion()
    ctx.wait_until(
        lambda: (
            kk.rolled_out(kk.deployment(ctx))[0] and served_version(ctx) == str(champion.version)
        ),
        SERVED_S,
        f"serving to answer with v{champion.version}",
    )


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The golden reset applies the overlay, which brings back the platform's policies but
    leaves alone any it does not name (the lab's, a learner's) and fields added to its own: all
    of them go first, and the overlay's come back whole right after. The neighbour goes too."""
    kubectl = kk.kubectl(ctx)
    kubectl.run("delete", "networkpolicy", "--all", timeout_s=60)
    Kubectl(kubectl.kubeconfig, namespace=NEIGHBOUR_NAMESPACE).run(
        "delete", "pod", NEIGHBOUR, "--ignore-not-found", timeout_s=120
    )

"""Lab 25: serving's CPU ceiling was "right-sized" to its average use, so every burst of work
waits for the next CFS period: p99 near a second while the CPU graph stays low.

A cost review sized serving's CPU from its average (a few percent of a core between the batch
calls). A batch call of a thousand applications needs some 30 to 50 ms of CPU; with a quota of
20 ms per 100 ms period, four of them at once take most of a second of wall time. The average never
shows it: the container is idle most of the minute, and throttled in every period of a burst.

The variants vary where the ceiling comes from and its value: the Deployment's own resources
(requests equal to limits, "Guaranteed"), the namespace's defaults (a LimitRange, with the
Deployment's CPU settings removed as "redundant"), or a request at the average and a limit a few
times it ("Burstable"). The ceiling is 200m in each: at 250m, four calls fit the SLO on a fast
core, and the incident would be throttling nobody feels.

The check sends the collections team's burst itself and reads each ready pod's CPU accounting
(cpu.stat: throttled periods) around it, so a fix is judged by what serving does under that
load, whatever changed: a higher ceiling, none, the namespace's defaults changed and the pods
rolled. The throttled periods are counted against the periods the calls lasted, not against all
the periods between the two readings: those also hold the pauses, and on a busy machine the
seconds a `kubectl exec` takes, in which probes and scrapes count periods nothing throttles.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls

DEPLOYMENT = "the serving Deployment"
NAMESPACE = "the namespace's defaults"
# Where the ceiling is set, what it is, and how the cost review put it.
VARIANTS = (
    {
        "source": DEPLOYMENT,
        "request": "200m",
        "limit": "200m",
        "how": "requests and limits both set to 200m, so the pod counts as Guaranteed",
    },
    {
        "source": NAMESPACE,
        "request": "200m",
        "limit": "200m",
        "how": "a LimitRange giving every container of the namespace 200m by default, and the "
        "serving Deployment's own CPU settings removed as redundant",
    },
    {
        "source": DEPLOYMENT,
        "request": "80m",
        "limit": "200m",
        "how": "the request set to the busiest minute's average (80m) and the limit to two and a "
        "half times it (200m), so the pod may burst above what it reserves",
    },
)
# The namespace's defaults in the second variant: a name of the platform's own, so a reset can
# take it away whatever the learner made of it.
DEFAULTS = "mlops-lab-defaults"
# The collections team's call: this many requests at once, each of this many applications,
# a few times with a pause, as its nightly job sends them.
BURST = 4
RECORDS = 1000
ROUNDS = 3
PAUSE_S = 1.0
# A container throttled in more than this share of the CFS periods a burst lasted is held back
# by its ceiling (kube-prometheus's CPUThrottlingHigh fires at the same share of its periods).
THROTTLED_SHARE = 0.25
# The CFS period: the kubelet's default (cpuCFSQuotaPeriod), which kind keeps.
CFS_PERIOD_S = 0.1
ROLLOUT_S = 600.0
CPU_NAME = "serving's pods get the CPU the burst needs"
# The container's CPU accounting: cgroup v2 (kind on a current Docker), else v1.
CPU_STAT = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.stat"


def _resources_patch(resources: dict[str, Any]) -> dict:
    return {
        "spec": {
            "template": {"spec": {"containers": [{"name": kk.SERVING, "resources": resources}]}}
        }
    }


def limit_range(variant: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": DEFAULTS},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": variant["limit"]},
                    "defaultRequest": {"cpu": variant["request"]},
                }
            ]
        },
    }


def start(ctx: LabContext, variant: dict) -> dict:
    original = kk.container(kk.deployment(ctx)).get("resources", {})
    kubectl = kk.kubectl(ctx)
    if variant["source"] == NAMESPACE:
        kubectl.apply(limit_range(variant))
        # A strategic merge patch deletes a key given as null.
        cpu_removed = {"requests": {"cpu": None}, "limits": {"cpu": None}}
        kubectl.patch("deployment", kk.SERVING, _resources_patch(cpu_removed))
    else:
        ceiling = {"requests": {"cpu": variant["request"]}, "limits": {"cpu": variant["limit"]}}
        kubectl.patch("deployment", kk.SERVING, _resources_patch(ceiling))
    # The incident is what the new pods do: the old one goes once a new one is ready.
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], ROLLOUT_S, "serving to roll out")
    ctx.say(
        '[bold]Lab 25.[/] Collections team: "since the cost review our nightly scoring job '
        "times out: four calls of a thousand applications at once take most of a second each, "
        "and it gives up at half a second. "
        "Your dashboard says serving uses a few percent of a core, so it cannot be busy. Can you "
        'look?"'
    )
    return {"resources": original}


def cpu_stat(ctx: LabContext, pod: str) -> dict[str, int]:
    """A pod's serving container's CPU accounting (``nr_periods``, ``nr_throttled``, ...): empty
    when it cannot be read (the pod went away)."""
    result = kk.kubectl(ctx).run(
        "exec", pod, "-c", kk.SERVING, "--", "sh", "-c", CPU_STAT, check=False, timeout_s=30
    )
    stat = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            stat[name] = int(value)
    return stat


def burst(ctx: LabContext) -> tuple[list[float], list[str], float]:
    """Send the collections team's call: the latency of each request that was answered, what
    went wrong with the others, and the seconds the calls lasted (the pauses left out)."""
    records = ctx.sample_records(min(RECORDS, ctx.settings.max_batch_records), seed=25)
    ctx.predict(records[:1])  # through a forward that follows a replaced pod (kube runtime)
    url = f"{ctx.serving_url}/predict"

    def one(_index: int) -> tuple[float | None, str]:
        sent = time.perf_counter()
        try:
            response = http_calls.post(url, json={"records": records}, timeout=30)
        except httpx.HTTPError as error:
            return None, type(error).__name__
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}"
        return time.perf_counter() - sent, ""

    latencies, failures, busy_s = [], [], 0.0
    with ThreadPoolExecutor(BURST) as pool:
        for round_ in range(ROUNDS):
            began = time.perf_counter()
            answered = list(pool.map(one, range(BURST)))
            busy_s += time.perf_counter() - began
            for latency, failure in answered:
                if latency is None:
                    failures.append(failure)
                else:
                    latencies.append(latency)
            if round_ + 1 < ROUNDS:
                time.sleep(PAUSE_S)
    return latencies, failures, busy_s


def throttled_shares(
    before: dict[str, dict], after: dict[str, dict], busy_s: float
) -> dict[str, float]:
    """Each pod's share of the CFS periods the burst lasted (``busy_s``) in which its ceiling
    throttled it, from two readings around the burst (0 for a container with no ceiling: it is
    never throttled)."""
    periods = max(busy_s / CFS_PERIOD_S, 1.0)
    shares = {}
    for pod, stat in after.items():
        throttled = stat.get("nr_throttled", 0) - before.get(pod, {}).get("nr_throttled", 0)
        shares[pod] = min(1.0, max(0, throttled) / periods)
    return shares


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    # A pod on its way out still reads Ready for its grace period.
    ready = [p for p in kk.pods(ctx) if kk.in_service(p)]
    answers = kk.serving_answers(ctx, bool(ready))
    conditions = [
        Condition.of(
            "serving is rolled out and ready",
            done and bool(ready),
            f"Deployment serving: {description}",
            f"Deployment serving: {description}",
        ),
        answers,
    ]
    names = [p["metadata"]["name"] for p in ready]
    if not (answers.passed and names):
        return [*conditions, *_unmeasured(ctx.settings.alert_latency_p99_s), _reservations(ready)]
    before = {name: cpu_stat(ctx, name) for name in names}
    latencies, failures, busy_s = burst(ctx)
    after = {name: cpu_stat(ctx, name) for name in names}
    slo = ctx.settings.alert_latency_p99_s
    worst = p99(latencies) if latencies else None
    shares = throttled_shares(before, after, busy_s)
    held = {pod: share for pod, share in shares.items() if share > THROTTLED_SHARE}
    unread = [name for name in names if not after[name]]
    return [
        *conditions,
        Condition.of(
            _burst_name(slo),
            not failures and worst is not None and worst <= slo,
            f"p99 {_seconds(worst)} over {len(latencies)} calls",
            f"p99 {_seconds(worst)} over {len(latencies)} calls"
            + (
                f"; {len(failures)} failed ({', '.join(sorted(set(failures)))})" if failures else ""
            ),
        ),
        Condition.of(
            CPU_NAME,
            not held and not unread,
            f"the calls lasted {busy_s:.1f} s; throttled in "
            + ", ".join(f"{share:.0%} of its periods ({pod})" for pod, share in shares.items()),
            "; ".join(
                [
                    f"{pod}: throttled in {share:.0%} of the CPU periods the calls lasted "
                    f"({busy_s:.1f} s)"
                    for pod, share in held.items()
                ]
                + [f"{pod}: its CPU accounting could not be read" for pod in unread]
            ),
        ),
        _reservations(ready),
    ]


def _burst_name(slo: float) -> str:
    return (
        f"{BURST} batch calls of {RECORDS} applications at once are answered within the p99 "
        f"SLO ({slo:g} s)"
    )


def _unmeasured(slo: float) -> list[Condition]:
    why = "not measured: serving does not answer"
    return [Condition.of(_burst_name(slo), False, "", why), Condition.of(CPU_NAME, False, "", why)]


def _reservations(ready: list[dict[str, Any]]) -> Condition:
    """The guard rails a fix must keep: the scheduler reserves CPU for serving, and its memory
    has a ceiling (what each running container really got, defaults included)."""
    missing = []
    for pod in ready:
        resources = kk.pod_container(pod).get("resources", {})
        if not resources.get("requests", {}).get("cpu"):
            missing.append(f"{pod['metadata']['name']} reserves no CPU")
        if not resources.get("limits", {}).get("memory"):
            missing.append(f"{pod['metadata']['name']} has no memory ceiling")
    return Condition.of(
        "serving keeps its CPU reservation and its memory ceiling",
        bool(ready) and not missing,
        "every ready pod reserves CPU and has a memory ceiling",
        "; ".join(missing) or "no ready pod",
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    pod = next((p["metadata"]["name"] for p in kk.pods(ctx) if kk.is_ready(p)), "<serving pod>")
    where = (
        "`kubectl -n mlops-lab get limitrange -o yaml`, and the pod's `kubernetes.io/"
        "limit-ranger` annotation: something fills in what the Deployment leaves out"
        if variant["source"] == NAMESPACE
        else "`kubectl -n mlops-lab get deploy serving -o jsonpath='{.spec.template.spec."
        "containers[0].resources}'`"
    )
    return [
        "Reproduce it: `make check N=25` sends the collections team's call (4 x 1,000 "
        "applications at once). Then look at serving while nothing calls it: an average says "
        "little about a burst that lasts a second.",
        f"What may serving's container use, and who decided? `kubectl -n mlops-lab describe pod "
        f"{pod}` (Requests, Limits, QoS Class).",
        f"The kernel counts it: `kubectl -n mlops-lab exec {pod} -- sh -c '{CPU_STAT}'` before "
        f"and after a burst (nr_periods, nr_throttled). Where the ceiling comes from: {where}.",
        "Give serving a CPU ceiling that fits a burst (1 CPU, as the manifest had), keep a "
        "request, and roll it out: `kubectl -n mlops-lab set resources deploy/serving -c "
        "serving --requests=cpu=250m --limits=cpu=1`"
        + (
            "; or change the namespace's defaults and start new pods."
            if variant["source"] == NAMESPACE
            else "."
        ),
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    original = progress.state["resources"]
    cpu = {
        kind: {"cpu": original[kind]["cpu"]}
        for kind in ("requests", "limits")
        if original.get(kind, {}).get("cpu")
    }
    kk.kubectl(ctx).patch("deployment", kk.SERVING, _resources_patch(cpu))
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], ROLLOUT_S, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """The overlay's apply (the golden reset) brings serving's resources back; the namespace's
    defaults are not in it."""
    kk.kubectl(ctx).run("delete", "limitrange", DEFAULTS, "--ignore-not-found", timeout_s=60)

"""Lab 17: a cleanup of serving's ServiceMonitor leaves Prometheus with no serving target.

The variants vary which link of the Prometheus Operator's chain the cleanup broke: the label the
Prometheus resource selects ServiceMonitors by, the endpoint's port name (no port of the Service
has it), or the ServiceMonitor's own selector (no Service carries the labels it asks for). Each
leaves no target at all: no error, no event, nothing down. The check is the same for all: a serving
target that is up, and serving's own series scraped within the last minute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

LABEL = "release"
VALUE = "kps"
# The port name a copied kube-prometheus ServiceMonitor brings (variant 2): serving's Service
# names its port http.
COPIED_PORT = "web"
# The older labelling convention the cleanup "standardised" the selector to (variant 3): the
# Service carries app.kubernetes.io/name only.
COPIED_SELECTOR = {"app": kk.SERVING}
VARIANTS = (
    {
        "change": "release",
        "cause": f"the cleanup dropped `{LABEL}: {VALUE}` from serving's ServiceMonitor, the label "
        "the Prometheus resource's `serviceMonitorSelector` takes ServiceMonitors by, so the "
        "operator left the whole ServiceMonitor out",
    },
    {
        "change": "port",
        "cause": f"the cleanup set the ServiceMonitor's endpoint to `port: {COPIED_PORT}` (copied "
        "from a kube-prometheus example), and serving's Service names its only port `http`: the "
        "operator kept the ServiceMonitor, and its keep rule on the port name dropped every "
        "endpoint",
    },
    {
        "change": "selector",
        "cause": f"the cleanup changed the ServiceMonitor's `selector` to `matchLabels: "
        f"{{app: {kk.SERVING}}}`, and serving's Service carries `app.kubernetes.io/name: "
        f"{kk.SERVING}` only: the operator kept the ServiceMonitor, and it selected no Service",
    },
)


def _monitor(ctx: LabContext) -> dict[str, Any]:
    return kk.kubectl(ctx).get("servicemonitor", kk.SERVING)


def _pointer(key: str) -> str:
    """A JSON pointer to a label key (``/`` and ``~`` escaped)."""
    return "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1")


def _break(monitor: dict[str, Any], change: str) -> list[dict[str, Any]]:
    """The JSON patch the variant's cleanup amounts to."""
    if change == "release":
        labels = monitor["metadata"].get("labels", {})
        return [{"op": "remove", "path": _pointer(LABEL)}] if LABEL in labels else []
    if change == "port":
        return [{"op": "replace", "path": "/spec/endpoints/0/port", "value": COPIED_PORT}]
    return [{"op": "replace", "path": "/spec/selector", "value": {"matchLabels": COPIED_SELECTOR}}]


def _as_before(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that puts back what the start found: the label, endpoints, selector (a
    start by an older release recorded the label only)."""
    patch = [{"op": "add", "path": _pointer(LABEL), "value": state.get("value", VALUE)}]
    for field in ("endpoints", "selector"):
        if field in state:
            patch.append({"op": "replace", "path": f"/spec/{field}", "value": state[field]})
    return patch


def start(ctx: LabContext, variant: dict) -> dict:
    monitor = _monitor(ctx)
    state = {
        "value": monitor["metadata"].get("labels", {}).get(LABEL, VALUE),
        "endpoints": monitor["spec"]["endpoints"],
        "selector": monitor["spec"]["selector"],
    }
    patch = _break(monitor, variant["change"])
    if patch:
        kk.kubectl(ctx).patch("servicemonitor", kk.SERVING, patch, patch_type="json")
    ctx.say(
        '[bold]Lab 17.[/] Model owner: "the serving dashboard has been empty since yesterday, '
        'but predictions work. Did we stop measuring?"'
    )
    return state


def await_evidence(ctx: LabContext, state: dict) -> None:
    """Until Prometheus has dropped serving's target and has no fresh sample of its series: the
    operator renders the configuration at once, and the config reloader applies it once the
    kubelet has updated the pod's copy (up to a minute or two). A check before would find them
    still there."""
    ctx.wait_until(
        lambda: not _serving_targets(ctx) and not _series(ctx),
        300,
        "Prometheus to stop scraping serving's pods",
    )


def _serving_targets(ctx: LabContext) -> list[dict]:
    return [
        t
        for t in ctx.targets()
        if t.get("labels", {}).get("namespace") == "mlops-lab"
        and t.get("labels", {}).get("service") == kk.SERVING
    ]


# A series counts as scraped when it has a sample this recent. Not merely present: an instant
# query still returns a series five minutes after its last sample, and Prometheus marks no series
# stale when a reload removes the whole job (the first variant's case).
FRESH_S = 60


def _series(ctx: LabContext) -> int:
    """How many of serving's own series (not the scrape bookkeeping) have a sample from the last
    ``FRESH_S`` seconds: a range selector returns exactly those, each with its raw samples (an
    expression over it, such as timestamp(), would see the evaluation's time, not the samples')."""
    own = f'{{namespace="mlops-lab", service="{kk.SERVING}", __name__!~"up|scrape_.*"}}'
    fresh = ctx.prometheus_api("/api/v1/query?query=" + quote(f"{own}[{FRESH_S}s]"))
    return len(fresh["result"])


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    targets = _serving_targets(ctx)
    up = [t for t in targets if t.get("health") == "up"]
    series = _series(ctx)
    return [
        Condition.of(
            "Prometheus has a serving target, and it is up",
            bool(up),
            f"{len(up)} serving target(s) up",
            "Prometheus has no serving target"
            if not targets
            else f"serving target(s) {targets[0].get('health')}: {targets[0].get('lastError')}",
        ),
        Condition.of(
            "serving's metrics are in Prometheus",
            series > 0,
            f"{series} series scraped from serving within the last minute",
            "no series scraped from serving within the last minute (they come with the first "
            "successful scrape)",
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    change = variant_of(VARIANTS, progress.state)["change"]
    where = {
        "release": "The Prometheus resource says which ServiceMonitors it takes: `kubectl -n "
        "monitoring get prometheus -o yaml` (its ServiceMonitor selectors). Does serving's "
        "ServiceMonitor qualify, as the others do?",
        "port": "The ServiceMonitor names the Service's port to scrape. Compare its endpoints "
        "(`kubectl -n mlops-lab get servicemonitor serving -o yaml`) with the ports of "
        "`kubectl -n mlops-lab get service serving -o yaml`, and with the other ServiceMonitors.",
        "selector": "A ServiceMonitor finds its Service by the Service's labels. Compare its "
        "selector (`kubectl -n mlops-lab get servicemonitor serving -o yaml`) with "
        "`kubectl -n mlops-lab get service serving --show-labels`.",
    }[change]
    fix = {
        "release": f"`kubectl -n mlops-lab label servicemonitor serving {LABEL}={VALUE}`",
        "port": "`kubectl -n mlops-lab patch servicemonitor serving --type json -p "
        '\'[{"op": "replace", "path": "/spec/endpoints/0/port", "value": "http"}]\'`',
        "selector": "`kubectl -n mlops-lab patch servicemonitor serving --type merge -p "
        '\'{"spec": {"selector": {"matchLabels": {"app": null, "app.kubernetes.io/name": '
        '"serving"}}}}\'`',
    }[change]
    return [
        "Prometheus' targets page lists what it scrapes. Is serving there at all, down or absent?",
        "Absent means the operator rendered no target for it. Who tells it what to scrape here? "
        "`kubectl -n mlops-lab get servicemonitors -o yaml`: compare serving's with the others.",
        where,
        f"{fix}; the target appears within about a minute.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    kk.kubectl(ctx).patch(
        "servicemonitor", kk.SERVING, _as_before(progress.state), patch_type="json"
    )
    ctx.wait_until(lambda: _serving_targets(ctx), 180, "Prometheus to find serving's target")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """golden.restore applies the overlay again where it has the monitoring objects (kind's);
    this puts back what the start found wherever it ran, including a learner's other edits."""
    if "value" in progress.state:
        patch = _as_before(progress.state)
        kk.kubectl(ctx).patch("servicemonitor", kk.SERVING, patch, patch_type="json")

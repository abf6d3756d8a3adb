"""Lab 17: serving's ServiceMonitor loses the label Prometheus selects by: metrics go silent."""

from __future__ import annotations

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

LABEL = "release"
VALUE = "kps"


def start(ctx: LabContext) -> dict:
    kubectl = kk.kubectl(ctx)
    monitor = kubectl.get("servicemonitor", kk.SERVING)
    value = monitor["metadata"].get("labels", {}).get(LABEL, VALUE)
    kubectl.run("label", "servicemonitor", kk.SERVING, f"{LABEL}-")
    ctx.say(
        '[bold]Lab 17.[/] Model owner: "the serving dashboard has been empty since yesterday, '
        'but predictions work. Did we stop measuring?"'
    )
    return {"value": value}


def _serving_targets(ctx: LabContext) -> list[dict]:
    return [
        t
        for t in ctx.targets()
        if t.get("labels", {}).get("namespace") == "mlops-lab"
        and t.get("labels", {}).get("service") == kk.SERVING
    ]


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    targets = _serving_targets(ctx)
    up = [t for t in targets if t.get("health") == "up"]
    own = ctx.query(
        f'count({{namespace="mlops-lab", service="{kk.SERVING}", __name__!~"up|scrape_.*"}})'
    )
    series = int(own[0]["value"]) if own else 0
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
            f"{series} series scraped from serving",
            "no series from serving yet (they appear after the first successful scrape)",
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    return [
        "Prometheus' targets page lists what it scrapes. Is serving there at all, down or absent?",
        "Absent means Prometheus was never told about it. Who tells it here? `kubectl -n "
        "mlops-lab get servicemonitors --show-labels`: compare serving's with the others.",
        "The Prometheus resource says which ServiceMonitors it takes: `kubectl -n monitoring get "
        "prometheus -o jsonpath='{.items[0].spec.serviceMonitorSelector}'`.",
        f"`kubectl -n mlops-lab label servicemonitor serving {LABEL}={VALUE}`; the target "
        "appears within about a minute.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    value = progress.state.get("value", VALUE)
    kk.kubectl(ctx).run("label", "servicemonitor", kk.SERVING, f"{LABEL}={value}", "--overwrite")
    ctx.wait_until(lambda: _serving_targets(ctx), 180, "Prometheus to find serving's target")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """golden.restore applies the overlay again; this also covers a label set to another value."""
    if "value" in progress.state:
        label = f"{LABEL}={progress.state['value']}"
        kk.kubectl(ctx).run("label", "servicemonitor", kk.SERVING, label, "--overwrite")

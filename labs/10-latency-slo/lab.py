"""Lab 10: serving's batches are held open (0.8 s in the first variant), so every request waits
before it is scored.

The model is as fast as ever: latency by model version shows the same version, suddenly slow,
while the time in the model stays in milliseconds. That is what tells a server problem from a
slow champion, which would show as a new version with a slow model call.

Serving has one setting that adds time around the model, the batch wait (``max_batch_records``
only closes a batch sooner; the others shed load or work off the request path): the variants
vary its value and how it got there.
"""

from __future__ import annotations

import math
import time

from mlops_lab.lab_engine.golden import served_version
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from monitoring import rules

SERVICE = "serving"
ALERT = "ServingLatencySLOBreached"
SETTING = "MLOPS_LAB_SERVING_BATCH_WAIT_S"
# The wait (seconds) someone gave serving's batches, where the value came from, and the p50 it
# gives (the first request of a batch waits it all, the last none: p99 near the wait, p50 half).
VARIANTS = (
    {
        "wait": "0.8",
        "origin": "throughput tuning: fuller batches, fewer model calls",
        "p50": "0.4",
    },
    {
        "wait": "1",
        "origin": "a wait of 1 ms, typed into a setting counted in seconds",
        "p50": "0.5",
    },
    {
        "wait": "1.5",
        "origin": "a load test at full load, where batches fill long before the wait ends",
        "p50": "0.75",
    },
)
# Answered requests a window needs before its p99 means anything (one slow request in a hundred).
MIN_SAMPLES = 100


def _window(ctx: LabContext) -> str:
    """The alert's own window: "recent traffic" is what the alert looks at."""
    return rules.rate_window(ctx.settings)


def p99(ctx: LabContext) -> tuple[float | None, float]:
    """p99 of /predict over the alert's window (what the alert compares), and the requests in it."""
    window = _window(ctx)
    count = 'bentoml_service_request_duration_seconds_count{endpoint="/predict"}'
    return (
        ctx.query_value(rules.serving_latency(0.99, window)),
        ctx.query_value(f"sum(increase({count}[{window}]))") or 0.0,
    )


def p99_of(ctx: LabContext, version: str, scoring: bool = False) -> tuple[float | None, float]:
    """One version's p99 over the window (of its requests, or of its model calls), and how many
    requests (or calls) that is."""
    window = _window(ctx)
    latency = ctx.query_value(rules.serving_latency_by_version(0.99, window, scoring, version))
    name = "serving_model_scoring_seconds" if scoring else "serving_prediction_latency_seconds"
    selector = f'{{model_version="{version}"}}'
    return latency, ctx.query_value(f"sum(increase({name}_count{selector}[{window}]))") or 0.0


def start(ctx: LabContext, variant: dict) -> dict:
    ctx.override(SERVICE, {SETTING: variant["wait"]})
    ctx.say(
        f"[bold]Lab 10.[/] Alert: {ALERT} (severity: critical). Loan front end: "
        '"since this morning many applications take longer to be scored than our page budget '
        'of half a second."'
    )
    return {"champion": str(ctx.require_champion().version)}


def _seconds(value: float | None) -> str:
    return "no data" if value is None else f"{value * 1000:.0f} ms"


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    slo = ctx.settings.alert_latency_p99_s
    since_start = max(1, math.ceil(time.time() - progress.require_started_at()))
    fired = ctx.query(_breached_since(ctx, since_start))
    ready, why = ctx.serving_ready()
    champion = ctx.champion()
    served = served_version(ctx) if ready else None
    overall, requests = p99(ctx)
    version = str(champion.version) if champion is not None else ""
    own, own_requests = p99_of(ctx, version) if version else (None, 0.0)
    firing = ctx.firing(ALERT)
    window = _window(ctx)
    return [
        Condition.of(
            "the incident is on record",
            bool(fired),
            "Prometheus recorded p99 latency over the SLO during the incident",
            "Prometheus has no record of p99 latency over the SLO since the lab started: its "
            "history was wiped",
        ),
        Condition.of(
            "serving answers with the champion",
            champion is not None and served == version,
            f"/predict answers with v{served}, the champion",
            f"serving is not ready: {why}"
            if not ready
            else f"/predict answers with v{served}, the champion is v{version or 'none'}",
        ),
        Condition.of(
            "p99 latency of recent traffic meets the SLO",
            overall is not None and overall <= slo and requests >= MIN_SAMPLES,
            f"p99 {_seconds(overall)} over the last {window} ({requests:.0f} requests), "
            f"SLO {slo:g}s",
            f"p99 {_seconds(overall)} over the last {window} ({requests:.0f} requests; at least "
            f"{MIN_SAMPLES} needed), SLO {slo:g}s; requests from before a fix leave this window "
            f"within {window}",
        ),
        Condition.of(
            "the champion's own p99 meets the SLO",
            own is not None and own <= slo and own_requests >= MIN_SAMPLES,
            f"v{version}: p99 {_seconds(own)} over {own_requests:.0f} requests",
            f"v{version or '?'}: p99 {_seconds(own)} over {own_requests:.0f} requests in the "
            f"last {window} (at least {MIN_SAMPLES} needed, SLO {slo:g}s)",
        ),
        Condition.of(
            f"{ALERT} is not firing",
            not firing,
            "the latency alert has resolved",
            f"{ALERT} still fires (it resolves once the last {window} of traffic is under the SLO)",
        ),
        cause_reported("10", progress.answers, "BATCH_WAIT"),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    champion = ctx.champion()
    version = str(champion.version) if champion is not None else "?"
    overall, _ = p99(ctx)
    latency, _ = p99_of(ctx, version)
    scoring, _ = p99_of(ctx, version, scoring=True)
    changed = "no" if version == progress.state.get("champion") else "yes"
    around = latency - scoring if latency is not None and scoring is not None else None
    slo = ctx.settings.alert_latency_p99_s
    return [
        "Before rolling anything back: is a new model answering? Compare the champion now with "
        f"the one before the page (new champion since the page: {changed}), and look at "
        "latency by model version on the Serving dashboard "
        f"(serving_prediction_latency_seconds). p99 now: {_seconds(overall)}.",
        "Latency is the time in the model plus everything around it. For the champion "
        f"v{version}: p99 of a request {_seconds(latency)}, p99 of a model call "
        f"{_seconds(scoring)} (serving_model_scoring_seconds). Where does the rest go?",
        "If the model is quick and requests are slow, they wait inside serving before they are "
        "scored. Serving's log says at start how it groups requests (`mlops-lab logs serving`); "
        f"it also reads its own configuration file under {ctx.settings.home / 'config'}. Fix "
        "it, `mlops-lab restart serving`, and watch p99 by version fall under the SLO.",
        f"p99 of a request minus p99 of a model call: {_seconds(around)}, about the longest a "
        "request waits for its batch to close. Serving's log states that wait each time it "
        f"starts. A wait every request may pay must fit in the SLO ({slo:g}s) with the model's "
        "time and room to spare: a few milliseconds, or none.",
    ]


def _breached_since(ctx: LabContext, seconds: int) -> str:
    """PromQL: p99 over the SLO at any evaluation in the last ``seconds`` (the evidence)."""
    step = f"{max(1, round(ctx.settings.scrape_interval_s))}s"
    latency = rules.serving_latency(0.99, _window(ctx))
    return f"max_over_time(({latency})[{seconds}s:{step}]) > {ctx.settings.alert_latency_p99_s}"


def await_evidence(ctx: LabContext, state: dict) -> None:
    s = ctx.settings
    within = 4 * (s.scrape_interval_s + s.rule_evaluation_interval_s) + 60

    def seconds() -> int:
        return max(1, math.ceil(time.time() - state["started_at"]))

    ctx.wait_until(
        lambda: ctx.query(_breached_since(ctx, seconds())),
        within,
        "p99 latency over the SLO in Prometheus",
    )


def solve(ctx: LabContext, progress: LabProgress) -> None:
    variant = variant_of(VARIANTS, progress.state)
    ctx.clear_overrides()
    progress.answers[CAUSE] = (
        f"serving holds every batch open for {variant['wait']} s: {SETTING}={variant['wait']} "
        f"(from {variant['origin']})"
    )

"""Lab 22: serving's requests-by-caller counter takes a new label value with every request, and
Prometheus's series grow without end.

Two changes meet: serving's configuration counts every caller by the name it sends
(``MLOPS_LAB_SERVING_CALLERS=*``, set to see partner banks by name without a list), and the loan
front end's new release quotes something new in every request in the name it sends (the variant
says what: a request id, the applicant's id, the time sent). Each request is then a new series
of ``serving_caller_requests_total``, which serving's process keeps until it restarts and
Prometheus keeps in its head.

The check judges outcomes: serving's scrape back to its usual size and no new series in it;
requests still counted by a caller's name (a relabel rule dropping the metric loses them); a
caller serving does not know adds no series (the bound holds, whatever clients send: the check
sends one request as such a caller); Prometheus's history of the incident kept.
"""

from __future__ import annotations

import time

import httpx

from mlops_lab.front_end.config import FrontEndConfig
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls
from serving.callers import HEADER, OTHER, UNKNOWN

JOB = "serving"
METRIC = "serving_caller_requests_total"
SETTING = "MLOPS_LAB_SERVING_CALLERS"
ALERT = "TargetSeriesGrowing"
FRONT_END = FrontEndConfig().caller
# The name the check's own request gives: one serving does not know.
PROBE = "mlops-lab-check"
# Series of the metric Prometheus recorded since the lab started: the incident's evidence (a
# bounded serving has a handful).
EVIDENCE = 100
# Series over the size serving's scrape had before the lab that a fixed serving may add (a
# caller or two, an endpoint's histogram).
MARGIN = 250
# New series in serving's scrapes over the check's window that still count as "none growing".
NEW_SERIES_MAX = 30

# What the front end's release quotes in the name it sends, and why its team did it.
VARIANTS = (
    {
        "value": "a new request id",
        "caller": "loan-front-end/{request_id}",
        "example": "loan-front-end/9540dfdc7b744dddbfc9d6e5a4f546b3",
        "why": "to find each of its requests in serving's logs",
    },
    {
        "value": "the applicant's id",
        "caller": "loan-front-end/applicant-{applicant_id}",
        "example": "loan-front-end/applicant-165b44bb3d3e0923",
        "why": "so the risk team could follow one applicant's requests",
    },
    {
        "value": "the time the request was sent",
        "caller": "loan-front-end@{sent_at}",
        "example": "loan-front-end@2026-12-06T08:10:36.309+00:00",
        "why": "to measure how long its requests take to reach serving",
    },
)


def window_s(ctx: LabContext) -> int:
    """The check's window: five scrapes, at least five seconds."""
    return max(5, round(5 * ctx.settings.scrape_interval_s))


def scrape_size(ctx: LabContext) -> float | None:
    return ctx.query_value(f'scrape_samples_scraped{{job="{JOB}"}}')


def recorded_since(ctx: LabContext, since: float) -> int:
    """Series of the metric Prometheus recorded from serving since ``since``."""
    seconds = max(1, int(time.time() - since) + 1)
    found = ctx.query_value(f'count(count_over_time({METRIC}{{job="{JOB}"}}[{seconds}s]))')
    return int(found or 0)


def new_series(ctx: LabContext) -> float:
    """Series serving's scrapes added over the window (a new label value is a new series)."""
    added = ctx.query_value(
        f'sum(sum_over_time(scrape_series_added{{job="{JOB}"}}[{window_s(ctx)}s]))'
    )
    return added or 0.0


def named_callers(ctx: LabContext) -> tuple[int, list[str]]:
    """How many callers, by name, sent requests over the window, and a few of them."""
    selector = f'{METRIC}{{job="{JOB}", caller!~"{OTHER}|{UNKNOWN}|{PROBE}"}}'
    recent = f"sum by (caller) (increase({selector}[{window_s(ctx)}s])) > 0"
    count = ctx.query_value(f"count({recent})") or 0
    shown = [r["metric"].get("caller", "") for r in ctx.query(f"topk(3, {recent})")]
    return int(count), shown


def probe(ctx: LabContext) -> tuple[int, list[str]]:
    """One request as a caller serving does not know: its answer's status, and the caller
    values serving's /metrics then shows for it (none when serving bounds the label)."""
    answer = http_calls.post(
        f"{ctx.serving_url}/predict",
        json={"records": ctx.sample_records(1)},
        headers={HEADER: PROBE},
        timeout=10,
    )
    return answer.status_code, _counted(ctx, f'caller="{PROBE}"')


def _counted(ctx: LabContext, matching: str = "") -> list[str]:
    """The series of the metric serving's /metrics exports now, those ``matching`` only."""
    text = http_calls.get(f"{ctx.serving_url}/metrics", timeout=30).text
    return [
        line for line in text.splitlines() if line.startswith(METRIC + "{") and matching in line
    ]


def start(ctx: LabContext, variant: dict) -> dict:
    baseline = scrape_size(ctx) or 0.0
    ctx.override(JOB, {SETTING: "*"})
    ctx.set_front_end(caller=variant["caller"])
    ctx.say(
        f'[bold]Lab 22.[/] Alert: {ALERT} (job=serving). Data team: "the Serving dashboard takes '
        "ages to load and Prometheus queries time out since this morning; its memory keeps "
        'climbing."'
    )
    return {"baseline": baseline}


def await_evidence(ctx: LabContext, state: dict) -> None:
    rate = ctx.front_end().rate_per_s
    ctx.wait_until(
        lambda: recorded_since(ctx, state["started_at"]) >= EVIDENCE,
        EVIDENCE / rate + 3 * ctx.settings.scrape_interval_s + 60,
        "serving's new series in Prometheus",
    )


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    state = progress.state
    baseline = float(state.get("baseline", 0.0))
    recorded = recorded_since(ctx, progress.require_started_at())
    size = scrape_size(ctx)
    added = new_series(ctx)
    named, shown = named_callers(ctx)
    status, probed = probe(ctx)
    firing = ctx.firing(ALERT, job=JOB)
    window = window_s(ctx)
    usual = baseline + MARGIN
    return [
        Condition.of(
            "Prometheus still holds the incident",
            recorded >= EVIDENCE,
            f"Prometheus recorded {recorded} series of {METRIC} since the lab started",
            f"Prometheus's history since the lab started holds {recorded} series of {METRIC}: "
            "the incident's data is gone, and with it its timeline",
        ),
        Condition.of(
            "serving answers",
            status == 200,
            "/predict answers",
            f"/predict answers HTTP {status}",
        ),
        Condition.of(
            "serving's scrape is back to its usual size",
            size is not None and size <= usual,
            f"{size:.0f} samples at the last scrape (about {baseline:.0f} before the incident)"
            if size is not None
            else "",
            f"serving's last scrape had {size:.0f} samples, {baseline:.0f} before the "
            "incident: every series serving's process has counted is exported at every scrape "
            "until it restarts"
            if size is not None
            else "Prometheus has no recent scrape of serving",
        ),
        Condition.of(
            "no new series appear in serving's metrics",
            added <= NEW_SERIES_MAX,
            f"{added:.0f} new series in serving's scrapes over the last {window}s",
            f"serving's scrapes added {added:.0f} new series over the last {window}s "
            "(scrape_series_added): something gives a label a new value all the time",
        ),
        Condition.of(
            "serving's requests are counted by the application that sent them",
            named > 0,
            f"requests over the last {window}s counted under {named} name(s): " + ", ".join(shown),
            f"no request over the last {window}s is counted in {METRIC} under a name: the "
            "per-application counts are gone (a metric dropped, or every "
            f"request counted as {OTHER!r})",
        ),
        Condition.of(
            "a client serving does not know adds no series",
            status == 200 and not probed,
            f"a request naming itself {PROBE!r} is not counted under that name",
            f"a request naming itself {PROBE!r} is counted under that name: any client "
            "that sends a new name adds a series, whatever it sends",
        ),
        Condition.of(
            f"{ALERT} has resolved",
            not firing,
            f"{ALERT} does not fire for serving",
            f"{ALERT} still fires for serving",
        ),
    ]


def _tsdb(ctx: LabContext) -> str:
    """What Prometheus's TSDB status page says now: its head, the metric and the label with the
    most series and values."""
    try:
        status = ctx.prometheus_api("/api/v1/status/tsdb")
    except httpx.HTTPError as error:
        return f"Prometheus's TSDB status does not answer ({type(error).__name__})."

    def top(key: str) -> str:
        return ", ".join(f"{e['name']} ({e['value']})" for e in (status.get(key) or [])[:3])

    head = (status.get("headStats") or {}).get("numSeries", "?")
    return (
        f"Prometheus's TSDB status now: {head} series in its head; most series by metric: "
        f"{top('seriesCountByMetricName')}; labels with the most values: "
        f"{top('labelValueCountByLabelName')}."
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    size = scrape_size(ctx)
    return [
        "Prometheus is the one suffering: how many series does it hold "
        "(`prometheus_tsdb_head_series`), since when has that grown, and which target's scrapes "
        "grow with it (`scrape_samples_scraped`, `scrape_series_added`, by job)? Serving's last "
        f"scrape had {'?' if size is None else f'{size:.0f}'} samples.",
        _tsdb(ctx) + " Which label is it, and what do a few of its values look like (serving's own "
        "/metrics, or `topk(5, ...)` in Prometheus)?",
        "Every value a label takes is a series Prometheus keeps. Where does serving take these "
        "values from, and why does it count each one under its own name? serving/README.md "
        "(Metrics, and how serving behaves in operation) says how it counts; the loan front "
        f"end's configuration is {ctx.front_end_path}, serving's own is "
        f"{ctx.settings.paths.config / 'serving.env'}.",
        f"Have the front end send a fixed name again (`caller: {FRONT_END}` in "
        f"{ctx.front_end_path.name}), put serving's {SETTING} back to a list of the callers it "
        "knows (remove the line from serving.env: the default lists them), then `mlops-lab "
        "restart serving`: a counter keeps every label set it ever counted until its process "
        "restarts. Keep Prometheus's data: it holds the incident.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    ctx.set_front_end(caller=FRONT_END)
    if JOB not in ctx.clear_overrides():
        ctx.restart(JOB)


def reset(ctx: LabContext, progress: LabProgress) -> None:
    """A serving process that counted the incident's callers exports them until it restarts,
    whatever its configuration says now: restarted, so the next lab starts from a usual scrape."""
    if (ctx.settings.paths.config / f"{JOB}.env").exists():
        return  # the golden reset removes the override and restarts serving anyway
    try:
        counted = _counted(ctx)
    except httpx.HTTPError:
        return
    if len(counted) > NEW_SERIES_MAX:
        ctx.restart(JOB)

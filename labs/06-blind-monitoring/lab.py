"""Lab 06: Prometheus's live configuration is edited so that the serving job scrapes where
serving serves no metrics; the variant says what was changed (its target's port in the first,
its metrics_path or its scheme in the others).

The port of the first is drawn at start (a free one) and recorded nowhere but in Prometheus's
own history, where the check and the fix read it: the learner's progress file names no answer.
"""

from __future__ import annotations

import time

import yaml

from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from mlops_lab.runtime.ports import free_port
from mlops_lab.runtime.services import by_name
from platform_core.settings import Settings

JOB = "serving"
# What the hand edit changed in the serving job, and the scrape error Prometheus then shows.
# The first variant's port is drawn at start (a free one): Prometheus's history says which.
TARGET = "target"
VARIANTS = (
    {"setting": TARGET, "wrong": "a port where nothing listens", "error": "connection refused"},
    # The path a Spring Boot service exposes, copied from another team's job.
    {"setting": "metrics_path", "wrong": "/actuator/prometheus", "error": "404 Not Found"},
    {
        "setting": "scheme",
        "wrong": "https",
        "error": "server gave HTTP response to HTTPS client",
    },
)


def _config_path(settings: Settings):
    return settings.paths.run / "prometheus.yml"


def metrics_url(settings: Settings) -> str:
    """Where serving serves its metrics: the scrape URL a right serving job builds."""
    service = by_name(JOB)
    return settings.url(service.port(settings), service.metrics_path or "")


def start(ctx: LabContext, variant: dict) -> dict:
    path = _config_path(ctx.settings)
    config = yaml.safe_load(path.read_text())
    wrong_port = free_port(ctx.settings.host) if variant["setting"] == TARGET else None
    for job in config["scrape_configs"]:
        if job["job_name"] != JOB:
            continue
        if wrong_port is not None:
            job["static_configs"][0]["targets"] = [f"{ctx.settings.host}:{wrong_port}"]
        else:
            job[variant["setting"]] = variant["wrong"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    ctx.reload("prometheus")
    ctx.say(
        '[bold]Lab 06.[/] Alert: TargetDown (job=serving). Support: "customers get answers as '
        'usual, but the Serving dashboard shows zero requests for the last few minutes."'
    )
    return {}


def other_ports(settings: Settings, down: list[dict]) -> list[str]:
    """The ports, other than serving's, of the serving job's targets in ``down`` (Prometheus's
    series of them that were down): where the first variant had it scrape."""
    own = str(by_name(JOB).port(settings))
    ports = {series["metric"].get("instance", "").rpartition(":")[2] for series in down}
    return sorted(ports - {own, ""})


def at_fault(settings: Settings, variant: dict, down: list[dict]) -> tuple[str, ...]:
    """What a cause report must name, as the platform spells it: the port, path or scheme."""
    if variant["setting"] == TARGET:
        return tuple(other_ports(settings, down))
    # "/actuator/prometheus" or "actuator/prometheus": the same path, either way.
    return (variant["wrong"].lstrip("/"),)


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    targets = ctx.targets()
    down = [f"{t['labels'].get('job')}: {t.get('lastError') or t['health']}" for t in targets]
    down = [d for t, d in zip(targets, down, strict=True) if t["health"] != "up"]
    expected = metrics_url(ctx.settings)
    serving_targets = [t for t in targets if t["labels"].get("job") == JOB]
    # The scrape URL is the job's scheme, target and metrics_path together: any of them wrong
    # and it differs, however the fix put them right.
    scraped_urls = [t.get("scrapeUrl", "?") for t in serving_targets]
    right_target = expected in scraped_urls
    fresh_serving = ctx.query(
        f'sum(rate(bentoml_service_request_total{{job="{JOB}",endpoint="/predict"}}[1m]))'
    )
    fresh_drift = ctx.query('time() - timestamp(drift_check_status{status="ok"}) < 120')
    scraped = {t["labels"].get("instance") for t in serving_targets}
    # A restart (rather than a reload) leaves the removed target's last sample for Prometheus's
    # 5-minute lookback, and its alert with it: that one is noted, not held against the fix.
    alerts = ctx.firing("TargetDown", job=JOB)
    firing = [a for a in alerts if a.get("instance") in scraped]
    # TargetDown fires on `up`, which Prometheus always labels with the target's instance.
    lingering = [a["instance"] for a in alerts if a["instance"] not in scraped]
    history = _down_since(ctx, progress.require_started_at())
    variant = variant_of(VARIANTS, progress.state)
    return [
        Condition.of(
            "Prometheus still holds the incident",
            bool(history),
            "serving's target shows as down during the incident in Prometheus's history",
            "Prometheus has no record of serving's target being down since the lab started: "
            "its data was wiped, and with it the incident's timeline",
        ),
        Condition.of(
            "Prometheus scrapes serving where serving serves its metrics",
            right_target,
            f"the serving job scrapes {expected}",
            f"the serving job scrapes {', '.join(scraped_urls) or 'nothing'}; serving serves "
            f"its metrics at {expected}",
        ),
        Condition.of(
            "every target is up",
            bool(targets) and not down,
            f"{len(targets)} targets up",
            f"down: {'; '.join(down) or 'no targets'}",
        ),
        Condition.of(
            "serving's and the drift monitor's metrics are fresh",
            bool(fresh_serving) and fresh_serving[0]["value"] > 0 and bool(fresh_drift),
            "recent /predict rate and drift checks are in Prometheus",
            "no recent /predict rate or drift check in Prometheus yet",
        ),
        Condition.of(
            "the alert has resolved",
            not firing,
            "TargetDown is not firing for serving's target"
            + (
                f" (the one for the removed target {', '.join(lingering)} clears within 5 "
                "minutes: Prometheus keeps a series' last sample that long after a restart)"
                if lingering
                else ""
            ),
            "TargetDown still fires for serving's target",
        ),
        cause_reported("06", progress.answers, *at_fault(ctx.settings, variant, history)),
    ]


def _down_since(ctx: LabContext, since: float) -> list:
    window = max(60, int(time.time() - since) + 30)
    return ctx.query(f'min_over_time(up{{job="{JOB}"}}[{window}s]) == 0')


def await_evidence(ctx: LabContext, state: dict) -> None:
    s, variant = ctx.settings, variant_of(VARIANTS, state)

    def recorded() -> bool:
        # In the first variant, a scrape at the wrong port itself (not an earlier dip of
        # serving's own target): the check and the fix read that port from this history.
        down = _down_since(ctx, state["started_at"])
        return bool(other_ports(s, down) if variant["setting"] == TARGET else down)

    ctx.wait_until(recorded, 3 * s.scrape_interval_s + 30, "serving's target down in Prometheus")


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    serving = [t for t in ctx.targets() if t["labels"].get("job") == JOB]
    seen = "; ".join(
        f"{t.get('scrapeUrl', '?')}: {t.get('lastError') or t['health']}" for t in serving
    )
    setting = variant_of(VARIANTS, progress.state)["setting"]
    return [
        "Is serving really down? Send it a request, or look at `mlops-lab logs front-end`. If "
        "it answers, it is the monitoring that went blind.",
        f"Prometheus's targets page says for serving: {seen or 'no target'}. Compare with where "
        "serving listens (`mlops-lab status`) and what it answers there.",
        "A scrape URL is the job's scheme, its target (host and port) and its metrics_path: "
        f"serving serves its metrics at {metrics_url(ctx.settings)}. Prometheus's "
        "configuration is rendered from the platform's settings on every start; the live file "
        f"is {_config_path(ctx.settings)}, and Status → Configuration shows what it runs with.",
        "Render it from the source of truth again and restart it: `mlops-lab restart "
        f"prometheus`. Then report what the live serving job had wrong: its {setting}.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    variant = variant_of(VARIANTS, progress.state)
    if variant["setting"] == TARGET:
        down = _down_since(ctx, progress.require_started_at())
        ports = " or ".join(other_ports(ctx.settings, down))
        said = f"the serving job scraped port {ports}, where nothing listens"
    else:
        said = (
            f"the serving job's {variant['setting']} was {variant['wrong']}, which serving does "
            f"not serve ({variant['error']})"
        )
    ctx.restart("prometheus")
    progress.answers[CAUSE] = said

"""Lab 06: Prometheus's live configuration is edited to scrape serving on a wrong port."""

from __future__ import annotations

import time

import yaml

from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported
from mlops_lab.lab_engine.progress import LabProgress
from mlops_lab.runtime.ports import free_port
from platform_core.settings import Settings

JOB = "serving"


def _config_path(settings: Settings):
    return settings.paths.run / "prometheus.yml"


def start(ctx: LabContext) -> dict:
    path = _config_path(ctx.settings)
    config = yaml.safe_load(path.read_text())
    wrong = free_port(ctx.settings.host)
    for job in config["scrape_configs"]:
        if job["job_name"] == JOB:
            job["static_configs"][0]["targets"] = [f"{ctx.settings.host}:{wrong}"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    ctx.reload("prometheus")
    ctx.say(
        '[bold]Lab 06.[/] Alert: TargetDown (job=serving). Support: "customers get answers as '
        'usual, but the Serving dashboard shows zero requests for the last few minutes."'
    )
    return {"wrong_port": wrong}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    targets = ctx.targets()
    down = [f"{t['labels'].get('job')}: {t.get('lastError') or t['health']}" for t in targets]
    down = [d for t, d in zip(targets, down, strict=True) if t["health"] != "up"]
    expected = f"{ctx.settings.host}:{ctx.settings.serving_port}"
    serving_targets = [t for t in targets if t["labels"].get("job") == JOB]
    right_target = any(t["labels"].get("instance") == expected for t in serving_targets)
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
    return [
        Condition.of(
            "Prometheus still holds the incident",
            bool(history),
            "serving's target shows as down during the incident in Prometheus's history",
            "Prometheus has no record of serving's target being down since the lab started: "
            "its data was wiped, and with it the incident's timeline",
        ),
        Condition.of(
            "Prometheus scrapes serving where serving listens",
            right_target,
            f"the serving job scrapes {expected}",
            f"the serving job scrapes "
            f"{', '.join(t['labels'].get('instance', '?') for t in serving_targets) or 'nothing'}"
            f"; serving listens on {expected}",
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
        cause_reported("06", progress.answers, str(progress.state["wrong_port"])),
    ]


def _down_since(ctx: LabContext, since: float) -> list:
    window = max(60, int(time.time() - since) + 30)
    return ctx.query(f'min_over_time(up{{job="{JOB}"}}[{window}s]) == 0')


def await_evidence(ctx: LabContext, state: dict) -> None:
    s = ctx.settings
    ctx.wait_until(
        lambda: _down_since(ctx, state["started_at"]),
        3 * s.scrape_interval_s + 30,
        "serving's target down in Prometheus",
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    serving = [t for t in ctx.targets() if t["labels"].get("job") == JOB]
    seen = "; ".join(
        f"{t['labels'].get('instance')}: {t.get('lastError') or t['health']}" for t in serving
    )
    return [
        "Is serving really down? Send it a request, or look at `mlops-lab logs front-end`. If "
        "it answers, it is the monitoring that went blind.",
        f"Prometheus's targets page says for serving: {seen or 'no target'}. Compare with where "
        "serving listens (`mlops-lab status`).",
        "Prometheus's configuration is rendered from the platform's settings on every start; "
        f"the live file is {_config_path(ctx.settings)}. Status → Configuration shows what it "
        "runs with.",
        "Render it from the source of truth again and restart it: `mlops-lab restart prometheus`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    ctx.restart("prometheus")
    port = progress.state["wrong_port"]
    progress.answers[CAUSE] = f"the serving job scraped port {port}, where nothing listens"

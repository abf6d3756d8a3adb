"""Lab 11: Alertmanager's live routing sends retrain alerts to the logging receiver."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

ALERT = "DataDriftDetected"


def _config_path(ctx: LabContext) -> Path:
    return ctx.settings.paths.run / "alertmanager.yml"


def start(ctx: LabContext) -> dict:
    path = _config_path(ctx)
    config = yaml.safe_load(path.read_text())
    for route in config["route"].get("routes", []):
        route["matchers"] = [
            m.replace('action="retrain"', 'action="retrian"') for m in route["matchers"]
        ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    ctx.reload("alertmanager")
    ctx.set_front_end(population="covariate_shift")
    ctx.say(
        '[bold]Lab 11.[/] DataDriftDetected is firing. ML team: "the drift alert has been red '
        "for a while, but no retrain ran. Isn't that automatic?\""
    )
    return {}


def live_config(ctx: LabContext) -> str | None:
    """The configuration the running Alertmanager uses (its API, not the file)."""
    try:
        status = httpx.get(f"{ctx.settings.alertmanager_url}/api/v2/status", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    return status.get("config", {}).get("original")


def routed_to(config_text: str, **labels: str) -> str:
    """The receiver amtool says an alert with these labels goes to."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(config_text)
    try:
        result = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={handle.name}"]
            + [f"{k}={v}" for k, v in labels.items()],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    return result.stdout.strip() or result.stderr.strip()


def _decisions(ctx: LabContext) -> list[dict]:
    url = ctx.settings.url(ctx.settings.alert_receiver_port, "/decisions")
    try:
        return httpx.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    config = live_config(ctx)
    route = routed_to(config, action="retrain", alertname=ALERT) if config else "no config"
    since = progress.require_started_at()
    misrouted = _misrouted(ctx, since)
    reached = [
        d
        for d in _decisions(ctx)
        if ALERT in d.get("alerts", []) and d.get("action") != "resolved" and _at(d) > since
    ]
    return [
        Condition.of(
            "the incident's misrouted notifications are on record",
            bool(misrouted),
            "the receiver's metrics show firing notifications that went to the logging route",
            "Prometheus has no record of notifications reaching the logging route during the "
            "incident: its history was wiped",
        ),
        Condition.of(
            "Alertmanager routes the drift alert to the retrain receiver",
            route == "retrain",
            "amtool: action=retrain alerts go to 'retrain'",
            f"amtool: an alert labelled action=retrain goes to {route!r}, not 'retrain'",
        ),
        Condition.of(
            "a firing drift alert reached the retrain receiver",
            bool(reached),
            f"the receiver decided: {reached[-1]['action']} ({reached[-1]['reason']})"
            if reached
            else "",
            "no DataDriftDetected notification has reached /alerts/retrain since the lab "
            "started (Alertmanager re-sends a firing group within group_interval after a reload)",
        ),
    ]


def _misrouted(ctx: LabContext, since: float) -> bool:
    """Whether firing notifications reached the logging route since the lab started."""
    window = max(60, int(time.time() - since) + 30)
    series = "alert_receiver_notifications_total"
    return bool(ctx.query(f'increase({series}{{route="log",status="firing"}}[{window}s]) > 0'))


def _at(decision: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(decision["at"]).timestamp()


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    config = live_config(ctx) or ""
    route = routed_to(config, action="retrain", alertname=ALERT) if config else "?"
    return [
        "Follow the alert: Prometheus (firing?) -> Alertmanager (received? which receiver?) -> "
        "the alert receiver's /decisions. Where does the trail stop?",
        f"Alertmanager's own answer, for an alert labelled action=retrain: it goes to {route!r}. "
        "`amtool config routes test --config.file=FILE action=retrain` asks the same question.",
        "Compare Alertmanager's running configuration (Status -> Config) with what the platform "
        "renders from its settings on `up`. Look at the route's matchers, letter by letter.",
        "Render it again and reload: `mlops-lab restart alertmanager`; then watch /decisions.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    # A learner fixes it minutes in; the reference fix waits until the incident is on record.
    since = progress.require_started_at()
    ctx.wait_until(lambda: _misrouted(ctx, since), 240, "a misrouted drift notification")
    ctx.restart("alertmanager")

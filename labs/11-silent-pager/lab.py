"""Lab 11: Alertmanager's live routing sends retrain alerts to the logging receiver."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import httpx
import yaml

from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import monitoring_auth

ALERT = "DataDriftDetected"
RETRAIN_PATH = "/alerts/retrain"


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
        response = httpx.get(
            f"{ctx.settings.alertmanager_url}/api/v2/status",
            timeout=5,
            auth=monitoring_auth.auth(ctx.settings),
        )
        status = response.json()
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
    reached = [
        d
        for d in _decisions(ctx)
        if ALERT in d.get("alerts", []) and d.get("action") != "resolved" and _at(d) > since
    ]
    return [
        Condition.of(
            "Alertmanager routes the drift alert to the retrain receiver",
            config is not None and reaches_retrain(route, config),
            f"amtool: action=retrain alerts go to {route!r}",
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
        cause_reported("11", progress.answers, "retrian"),
    ]


def retrain_receivers(config_text: str) -> set[str]:
    """The receivers whose webhook is the alert receiver's retrain endpoint, whatever their name."""
    try:
        receivers = (yaml.safe_load(config_text) or {}).get("receivers") or []
    except yaml.YAMLError:
        return set()
    return {
        str(r.get("name"))
        for r in receivers
        if any(RETRAIN_PATH in str(w.get("url", "")) for w in r.get("webhook_configs") or [])
    }


def reaches_retrain(route: str, config_text: str) -> bool:
    """Whether amtool's answer includes a receiver that retrains: one receiver, or several when a
    route fans out (``continue: true`` makes amtool print them comma-separated)."""
    names = {name.strip() for name in route.split(",")}
    return bool(names & retrain_receivers(config_text))


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
    ctx.restart("alertmanager")
    progress.answers[CAUSE] = 'the live route matched action="retrian", so retrains went to log'

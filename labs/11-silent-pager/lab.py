"""Lab 11: a hand edit of Alertmanager's live routing sends the drift alert to the logging
receiver instead of the retrain one; the variant says how (a misspelt matcher value in the first,
a matcher added to the retrain route or a route placed above it in the others)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import httpx
import yaml

from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls, monitoring_auth

ALERT = "DataDriftDetected"
RETRAIN_PATH = "/alerts/retrain"
RETRAIN_MATCHER = 'action="retrain"'
# The edits, by what they did with their matcher: each teaches one rule of routing (matching is
# exact; a route matches only when all its matchers do; the first matching route wins).
MISSPELT = f"typed for `{RETRAIN_MATCHER}` in the retrain route"
ADDED = "added to the retrain route's matchers"
ABOVE = "given a route of its own to the logging receiver, above the retrain route"
VARIANTS = (
    {
        "matcher": 'action="retrian"',
        "edit": MISSPELT,
        "effect": "matched no route (no alert says retrian) and fell through to the root's "
        "receiver",
    },
    {
        "matcher": 'severity="critical"',
        "edit": ADDED,
        "effect": "is a warning: the retrain route no longer took it, and it fell through to the "
        "root's receiver",
    },
    {
        "matcher": 'severity="warning"',
        "edit": ABOVE,
        "effect": "is a warning: the new route took it first, and without `continue: true` the "
        "walk stopped there",
    },
)


def _config_path(ctx: LabContext) -> Path:
    return ctx.settings.paths.run / "alertmanager.yml"


def drift_alert_labels(ctx: LabContext) -> dict[str, str]:
    """The labels the drift alert carries, from the rule the platform renders: a route test
    with fewer would miss a route that matches on the others."""
    from monitoring.rules import model_rules

    rule = next(r for r in model_rules(ctx.settings)["rules"] if r["alert"] == ALERT)
    return {"alertname": ALERT, **rule["labels"]}


def broken_routes(routes: list[dict], variant: dict) -> list[dict]:
    """The root's routes after the variant's hand edit."""
    matcher, edit = variant["matcher"], variant["edit"]
    if edit == ABOVE:
        return [{"receiver": "log", "matchers": [matcher]}, *routes]
    retrain = [r for r in routes if RETRAIN_MATCHER in r.get("matchers", [])]
    for route in retrain:
        if edit == MISSPELT:
            route["matchers"] = [matcher if m == RETRAIN_MATCHER else m for m in route["matchers"]]
        else:
            route["matchers"] = [*route["matchers"], matcher]
    return routes


def start(ctx: LabContext, variant: dict) -> dict:
    path = _config_path(ctx)
    config = yaml.safe_load(path.read_text())
    config["route"]["routes"] = broken_routes(config["route"].get("routes", []), variant)
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
        response = http_calls.get(
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
        decisions = http_calls.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []
    # A receiver that is starting or failing answers with an error document, not a list.
    return [d for d in decisions if isinstance(d, dict)] if isinstance(decisions, list) else []


def at_fault(variant: dict) -> tuple[str, ...]:
    """What a cause report must name, as the platform spells it: the edit's matcher value (and,
    for a route placed above, the `continue` it lacked)."""
    value = variant["matcher"].partition("=")[2].strip('"')
    return (value, "continue") if variant["edit"] == ABOVE else (value,)


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    config = live_config(ctx)
    labels = drift_alert_labels(ctx)
    route = routed_to(config, **labels) if config else "no config"
    since = progress.require_started_at()
    reached = [
        d
        for d in _decisions(ctx)
        if ALERT in d.get("alerts", []) and d.get("action") != "resolved" and _at(d) > since
    ]
    shown = " ".join(f"{k}={v}" for k, v in labels.items())
    return [
        Condition.of(
            "Alertmanager routes the drift alert to the retrain receiver",
            config is not None and reaches_retrain(route, config),
            f"amtool: an alert labelled {shown} goes to {route!r}",
            f"amtool: an alert labelled {shown} goes to {route!r}, not 'retrain'",
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
        cause_reported("11", progress.answers, *at_fault(variant_of(VARIANTS, progress.state))),
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
    labels = drift_alert_labels(ctx)
    route = routed_to(config, **labels) if config else "?"
    shown = " ".join(f"{k}={v}" for k, v in labels.items())
    edit = variant_of(VARIANTS, progress.state)["edit"]
    where = {
        MISSPELT: "Look at the retrain route's matchers, letter by letter.",
        ADDED: "A route takes an alert only when every one of its matchers matches the alert's "
        "labels: hold the retrain route's matchers against the drift alert's labels.",
        ABOVE: "Routes are tried from the top, and the first that matches takes the alert unless "
        "it says otherwise: look at what comes before the retrain route.",
    }[edit]
    return [
        "Follow the alert: Prometheus (firing?) -> Alertmanager (received? which receiver?) -> "
        "the alert receiver's /decisions. Where does the trail stop?",
        f"Alertmanager's own answer, for an alert labelled as the drift alert is ({shown}): it "
        f"goes to {route!r}. `amtool config routes test --config.file=FILE --tree {shown}` asks "
        "the same question and prints the path it takes through the routing tree.",
        "Compare Alertmanager's running configuration (Status -> Config) with what the platform "
        f"renders from its settings on `up`. {where}",
        "Render it again and reload: `mlops-lab restart alertmanager`; then watch /decisions, and "
        "report what the live routing had wrong, spelled as it was.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    ctx.restart("alertmanager")
    variant = variant_of(VARIANTS, progress.state)
    said = f"the live config had {variant['matcher']} {variant['edit']}, so retrains went to log"
    if variant["edit"] == ABOVE:
        said += " (that route had no continue: true)"
    progress.answers[CAUSE] = said

"""Blameless postmortems of solved labs, pre-filled with what the platform knows.

The platform knows when the incident started and when the check passed (the progress store),
which alerts fired in between and when each first did (Prometheus's ``ALERTS`` series), how many
hints and check attempts it took, and what the passing check saw. The learner writes the rest:
hypothesis, evidence, repair, verification, root cause and prevention, each marked with
:data:`PLACEHOLDER` until replaced, so a finished postmortem is one without the marker.

Files go to ``<learner_home>/postmortems/``, one per solve, named after the lab and the solve
time: writing one again for the same solve refuses and names the file rather than overwrite it.
A solve that followed the reference fix (`mlops-lab lab solve`) says so in the postmortem, and
the portfolio marks it from the progress store, whatever the text says after editing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from mlops_lab.lab_engine.catalog import Lab
from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED, LabProgress, ProgressStore
from platform_core import http_calls, monitoring_auth
from platform_core.errors import PlatformError
from platform_core.settings import Settings

PLACEHOLDER = "FILL IN"
ASSISTED = "assisted: the reference fix was applied (`lab solve` or `oncall solve`)"
_SOLVE_STAMP = "%Y%m%d-%H%M%S"
# Labels of ALERTS that say nothing about where: every series has them.
_BOOKKEEPING = {"__name__", "alertname", "alertstate"}


@dataclass(frozen=True)
class FiredAlert:
    name: str
    first_firing: float
    labels: dict[str, str]
    # Firing when the incident started: left over from before, so it detected nothing.
    already: bool = False

    def describe(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.name} ({where})" if where else self.name


def stamp(timestamp: float) -> str:
    """A time as the postmortem shows it: local, to the second, with the zone."""
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def folder(settings: Settings) -> Path:
    return settings.learner_home / "postmortems"


def fired_alerts(settings: Settings, start: float, end: float) -> list[FiredAlert]:
    """Each alert that fired between ``start`` and ``end``, with when it first did (to within
    the query step). Raises :class:`PlatformError` when Prometheus does not answer."""
    # At most ~500 points per series; Prometheus refuses more than 11,000.
    step = max(1, math.ceil((end - start) / 500))
    url = f"{settings.prometheus_url}/api/v1/query_range"
    params = {"query": 'ALERTS{alertstate="firing"}', "start": start, "end": end, "step": step}
    try:
        response = http_calls.get(
            url, params=params, timeout=15, auth=monitoring_auth.auth(settings)
        )
        response.raise_for_status()
        series = response.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise PlatformError(
            f"Prometheus did not answer at {settings.prometheus_url} ({error})."
        ) from error
    first: dict[str, FiredAlert] = {}
    for entry in series:
        metric, values = entry["metric"], entry["values"]
        if not values:
            continue
        name = metric.get("alertname", "?")
        at = float(values[0][0])
        if name not in first or at < first[name].first_firing:
            labels = {k: v for k, v in metric.items() if k not in _BOOKKEEPING}
            first[name] = FiredAlert(name, at, labels, already=at <= start)
    return sorted(first.values(), key=lambda alert: alert.first_firing)


def write(settings: Settings, lab: Lab, progress: LabProgress) -> Path:
    """Write the pre-filled postmortem of the lab's latest solve; returns its path."""
    if progress.status != SOLVED or progress.solved_at is None or progress.started_at is None:
        on_call = progress.status == IN_PROGRESS and progress.mode == "oncall"
        check = "`mlops-lab oncall check`" if on_call else f"`mlops-lab lab check {lab.id}`"
        raise PlatformError(
            f"Lab {lab.id} has not been solved, so there is no incident to write up yet.",
            hint=f"{check} until it passes, then `mlops-lab postmortem {lab.id}`.",
        )
    solved = solve_stamp(progress.solved_at)
    path = folder(settings) / f"{lab.name}-{solved}.md"
    # Under any name the lab's folder had: one written before a rename is the same solve's.
    existing = sorted(folder(settings).glob(f"{lab.id}-*-{solved}.md"))
    if existing:
        raise PlatformError(
            f"The postmortem of this solve already exists: {existing[0]}. It is not "
            "overwritten, so what you wrote in it is safe.",
            hint="Edit that file; a new solve of the lab gets a new postmortem.",
        )
    try:
        alerts, problem = fired_alerts(settings, progress.started_at, progress.solved_at), None
    except PlatformError as error:
        alerts, problem = [], error.message
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(lab, progress, alerts, problem))
    return path


def solve_stamp(solved_at: float) -> str:
    """A solve's time as postmortem file names end: local, to the second."""
    return dt.datetime.fromtimestamp(solved_at).strftime(_SOLVE_STAMP)


def was_assisted(settings: Settings, path: Path) -> bool:
    """Whether the solve a postmortem file is of followed the reference fix, from the progress
    store (its name gives the lab's id and the solve time)."""
    match = re.fullmatch(r"(?P<id>\d{2})-.*-(?P<solved>\d{8}-\d{6})\.md", path.name)
    if match is None:
        return False
    progress = ProgressStore(settings.learner_home).get(match["id"])
    return any(solve_stamp(at) == match["solved"] for at in progress.assisted_solves)


def render(
    lab: Lab, progress: LabProgress, alerts: list[FiredAlert], alerts_problem: str | None = None
) -> str:
    started, solved = progress.started_at or 0.0, progress.solved_at or 0.0
    seconds = progress.seconds_to_solve or (solved - started)
    mode = (
        "on-call round (the incident was not named until solved)"
        if progress.mode == "oncall"
        else f"lab (`mlops-lab lab start {lab.id}`)"
    )
    lines = [
        f"# Postmortem: {lab.title}",
        "",
        "Blameless: this describes what the system and the process allowed, not who erred.",
        "",
        "| | |",
        "|---|---|",
        f"| Lab | {lab.id} ({lab.slug}) |",
        f"| Mode | {mode} |",
        f"| Solved | {ASSISTED if progress.assisted else 'unaided'} |",
        f"| Incident started | {stamp(started)} |",
        f"| Detected | {_detection(started, alerts, alerts_problem)} |",
        f"| Check passed | {stamp(solved)} |",
        f"| Time to solve | {_duration(seconds)} |",
        f"| Hints used | {progress.hints_used} |",
        f"| Check attempts | {progress.attempts} |",
        "",
        "## Summary",
        "",
        f"**{PLACEHOLDER}:** two or three sentences: what users saw, for how long, what fixed it.",
        "",
        "## Timeline",
        "",
        *_timeline(progress, alerts),
        "",
        "## What the passing check saw",
        "",
        *_evidence(progress),
        "",
        "## Investigation",
        "",
        "### Hypothesis",
        "",
        f"**{PLACEHOLDER}:** what you first thought was wrong, and which symptom said so.",
        "",
        "### Evidence",
        "",
        f"**{PLACEHOLDER}:** what you looked at (queries, logs, commands) and what it showed.",
        "",
        "### Repair",
        "",
        f"**{PLACEHOLDER}:** what you changed, and why that rather than something quicker.",
        "",
        "### Verification",
        "",
        f"**{PLACEHOLDER}:** how you knew it was fixed, besides the check passing.",
        "",
        "## Root cause",
        "",
        f"**{PLACEHOLDER}:** the cause behind the symptom, and why nothing stopped it earlier.",
        "",
        "## Prevention",
        "",
        f"**{PLACEHOLDER}:** what would stop it recurring, or catch it sooner (an alert, a test, "
        "a check in the pipeline).",
        "",
    ]
    return "\n".join(lines)


def is_complete(text: str) -> bool:
    return PLACEHOLDER not in text


def _detection(started: float, alerts: list[FiredAlert], problem: str | None) -> str:
    if problem is not None:
        return f"**{PLACEHOLDER}:** from the Alertmanager or your notes ({problem})"
    new = [alert for alert in alerts if not alert.already]
    if not new:
        before = ", ".join(alert.name for alert in alerts)
        since = f" (already firing before it: {before})" if before else ""
        return f"no alert fired between the start and the fix{since}"
    alert = new[0]
    after = alert.first_firing - started
    return f"{stamp(alert.first_firing)} by {alert.describe()}, {_duration(after)} after the start"


def _timeline(progress: LabProgress, alerts: list[FiredAlert]) -> list[str]:
    started, solved = progress.started_at or 0.0, progress.solved_at or 0.0
    entries = [(started, "incident started")]
    entries += [
        (
            a.first_firing,
            f"alert **{a.describe()}** "
            + ("already firing, from before the incident" if a.already else "firing"),
        )
        for a in alerts
    ]
    for event in progress.events:
        at = float(event.get("at", 0))
        if not started <= at < solved:
            continue
        kind = event.get("kind")
        if kind == "hint" and event.get("tier") == "why":
            failing = ", ".join(event.get("conditions", [])) or "?"
            entries.append((at, f"why the check failed shown (a hint): {failing}"))
        elif kind == "hint":
            entries.append((at, f"hint {event.get('tier')} taken"))
        elif kind == "checked" and not event.get("passed"):
            entries.append((at, f"check failed: {', '.join(event.get('failed', [])) or '?'}"))
        elif kind == "reference fix applied":
            entries.append((at, "the reference fix was applied: the solve is assisted"))
    entries.append((solved, "check passed: incident over"))
    return [f"- {stamp(at)}: {what}" for at, what in sorted(entries, key=lambda e: e[0])]


def _evidence(progress: LabProgress) -> list[str]:
    evidence = progress.state.get("evidence") or []
    if not evidence:
        return ["(the check recorded no evidence)"]
    return [f"- **{item.get('name', '?')}**: {item.get('detail', '')}" for item in evidence]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"

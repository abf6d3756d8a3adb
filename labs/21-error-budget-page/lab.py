"""Lab 21: the serving team's SLO page, ServingErrorBudgetBurn, did not do its job in last night's
outage. The variant says what is wrong with the rule the team wrote.

The check replays two nights against the rules Prometheus runs (its rules API, not the file), with
``promtool test rules``: an outage like last night's must page in time and stop paging once
serving recovers; a night within the error budget, with a short blip, must page no one. And no
silence may hide the page. Any rule that does that passes: the reference fix is the SRE workbook's
multiwindow burn-rate alert, and the same alert with its slower window pair passes too.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import yaml

from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from mlops_lab.runtime import executables
from monitoring import team_rules

ALERT = "ServingErrorBudgetBurn"
# The platform's pages carry severity "critical" (monitoring.rules); warnings are tickets.
PAGE = "critical"
TEAM_FILE = "serving-slo.yml"
SLO = "99.5 %"

# 14.4 times the budget over an hour spends 2 % of a 30-day budget: the workbook's fast page.
_COUNTER = "bentoml_service_request_total"
# Failed over all; ``or ... * 0`` makes the ratio 0, not absent, while nothing has failed yet.
_RATIO = (
    f'(sum by (job) (rate({_COUNTER}{{{{endpoint="/predict", http_response_code=~"5.."}}}}[{{w}}]))'
    f'\n             or sum by (job) (rate({_COUNTER}{{{{endpoint="/predict"}}}}[{{w}}])) * 0)'
    f'\n            / sum by (job) (rate({_COUNTER}{{{{endpoint="/predict"}}}}[{{w}}]))'
)
_HEADER = """\
# Serving team: availability SLO of POST /predict. 99.5 % of requests answered without a 5xx
# over 30 days, so an error budget of 0.5 %. Pages the serving rota (severity: critical).
# Owner: serving on-call. Changes: a pull request to the serving team, then
# `mlops-lab restart prometheus`, which checks this file and reloads it.
groups:
  - name: serving-slo
    rules:
"""
_RECORD = """\
      - record: job:serving_predict_errors:ratio_rate{w}
        expr: |
          {ratio}
"""
_ALERT = """\
      - alert: ServingErrorBudgetBurn
        expr: |
{expr}
        for: {pending}
        labels:
          severity: critical
          slo: serving-availability
        annotations:
          summary: "Serving is spending its error budget fast"
          description: "At this rate the month's error budget of /predict is gone within days."
"""


def _record(window: str) -> str:
    return _RECORD.format(w=window, ratio=_RATIO.format(w=window))


def _burns(pairs: list[tuple[str, str, str]], budget: str, short: bool) -> str:
    """The alert's expression: for each (long, short, factor) both windows burn faster than
    ``factor`` times the budget (the long one alone without ``short``); any pair pages."""
    ratio = "job:serving_predict_errors:ratio_rate"
    clauses = [
        f"({ratio}{long} > ({factor} * {budget})"
        + (f"\n           and {ratio}{window} > ({factor} * {budget}))" if short else ")")
        for long, window, factor in pairs
    ]
    return "          " + "\n          or ".join(clauses)


def rules_text(
    pairs: list[tuple[str, str, str]],
    budget: str = "(1 - 0.995)",
    pending: str = "2m",
    short: bool = True,
) -> str:
    windows = sorted({w for pair in pairs for w in pair[:2]}, key=_minutes)
    return (
        _HEADER
        + "".join(_record(w) for w in windows)
        + _ALERT.format(expr=_burns(pairs, budget, short), pending=pending)
    )


def _minutes(window: str) -> int:
    return int(window[:-1]) * (60 if window.endswith("h") else 1)


FAST = [("1h", "5m", "14.4")]
REFERENCE = rules_text(FAST)


# What is wrong with the team's rule; ``effect`` is what it did last night.
VARIANTS = (
    {
        "flaw": "the SLO target written as a percentage",
        "written": "14.4 * (1 - 99.5)",
        "effect": "a threshold below zero: it fired at any traffic, so it was silenced, and "
        "last night's outage paged no one",
    },
    {
        "flaw": "a pending period longer than the outage",
        "written": "for: 1h",
        "effect": "the alert had to hold for an hour before it paged; last night's outage was "
        "over in twenty minutes, so it never did",
    },
    {
        "flaw": "one long window and no short one",
        "written": "job:serving_predict_errors:ratio_rate1h > (14.4 * (1 - 0.995))",
        "effect": "the hour's ratio paged thirteen minutes in and stayed above the threshold "
        "for most of an hour after serving recovered, so the on-call chased a fixed outage "
        "and finally silenced it",
    },
)
_BROKEN = {
    "14.4 * (1 - 99.5)": lambda: rules_text(FAST, "(1 - 99.5)"),
    "for: 1h": lambda: rules_text(FAST, pending="1h"),
    # The hour alone (its five-minute ratio still recorded, and unused).
    "job:serving_predict_errors:ratio_rate1h > (14.4 * (1 - 0.995))": lambda: rules_text(
        FAST, short=False
    ),
}
# Who silenced it, and why, when the variant's page was muted (none for the one that never paged).
_SILENCED = {
    "14.4 * (1 - 99.5)": (
        7 * 24 * 60,
        "fires all the time since it was added, muting until someone has time to look",
    ),
    "job:serving_predict_errors:ratio_rate1h > (14.4 * (1 - 0.995))": (
        24 * 60,
        "serving recovered 40 min ago and this still pages; muting to get some sleep",
    ),
}
_COMPLAINT = {
    "14.4 * (1 - 99.5)": "ServingErrorBudgetBurn fired without a pause from the day it was "
    "added, so someone muted it; last night 40 % of /predict requests failed for twenty "
    "minutes, and the serving rota was not paged.",
    "for: 1h": "last night 40 % of /predict requests failed for twenty minutes, and "
    "ServingErrorBudgetBurn never paged the serving rota.",
    "job:serving_predict_errors:ratio_rate1h > (14.4 * (1 - 0.995))": "last night 40 % of "
    "/predict requests failed for twenty minutes. ServingErrorBudgetBurn paged, but went on "
    "paging for most of an hour after serving had recovered: the on-call rolled back a healthy "
    "release, then muted it.",
}


# ---- the two nights the check replays -------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """Requests to /predict per minute, and the share that failed in each minute."""

    name: str
    minutes: int
    failing: dict[range, float]
    # Evaluation times (minutes) and whether the page must be firing then.
    expect: dict[int, bool]
    per_minute: int = 1_000
    baseline: float = 0.001

    def failed_share(self, minute: int) -> float:
        return next((s for span, s in self.failing.items() if minute in span), self.baseline)


OUTAGE_AT, OUTAGE_MIN = 60, 20
PAGE_WITHIN_MIN, QUIET_AFTER_MIN = 15, 30
OUTAGE = Night(
    "an outage like last night's (40 % of requests failing for 20 minutes)",
    OUTAGE_AT + OUTAGE_MIN + 60,
    {range(OUTAGE_AT, OUTAGE_AT + OUTAGE_MIN): 0.4},
    {
        OUTAGE_AT + PAGE_WITHIN_MIN: True,
        OUTAGE_AT + OUTAGE_MIN + QUIET_AFTER_MIN: False,
        OUTAGE_AT + OUTAGE_MIN + 40: False,
    },
)
# 0.3 % failing spends the month's budget in 50 days; a 3-minute blip spends 1.4 % of it.
BLIP_AT = 240
WITHIN_BUDGET = Night(
    "six hours within the budget (0.3 % failing) with a 3-minute blip of failures at 4h",
    360,
    {range(BLIP_AT, BLIP_AT + 3): 1.0},
    {m: False for m in (30, 60, 120, BLIP_AT + 3, BLIP_AT + 5, BLIP_AT + 10, BLIP_AT + 30, 359)},
    baseline=0.003,
)


def _counters(night: Night) -> tuple[list[float], list[float]]:
    """Cumulative answered and failed requests, one sample a minute."""
    ok, failed, answered, errors = [], [], 0.0, 0.0
    for minute in range(night.minutes + 1):
        ok.append(answered)
        failed.append(errors)
        share = night.failed_share(minute)
        errors += round(night.per_minute * share)
        answered += night.per_minute - round(night.per_minute * share)
    return ok, failed


def _series(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "bentoml_service_request_total")
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{pairs}}}"


def live_labels(ctx: LabContext) -> dict[str, str]:
    """The labels of serving's /predict counter as Prometheus scrapes it (the replay copies them:
    a rule that selects the live series selects the replayed ones)."""
    found = ctx.query('bentoml_service_request_total{endpoint="/predict"}')
    if found:
        return dict(found[0]["metric"])
    s = ctx.settings
    return {
        "__name__": "bentoml_service_request_total",
        "job": "serving",
        "instance": f"{s.host}:{s.serving_port}",
        "service": "serving",
        "endpoint": "/predict",
        "http_response_code": "200",
    }


def _clock(minute: int) -> str:
    hours, minutes = divmod(minute, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


# ---- what Prometheus runs, replayed ---------------------------------------------------------


def loaded_rules(groups: list[dict]) -> dict:
    """Prometheus's loaded groups as a rule file (the rules API gives each rule's query, its
    pending period in seconds, its labels and annotations). Evaluated at the replay's interval."""
    out = []
    for group in groups:
        rules = []
        for rule in group.get("rules", []):
            if rule.get("type") == "alerting":
                entry = {"alert": rule["name"], "expr": rule["query"]}
                if rule.get("duration"):
                    entry["for"] = f"{int(rule['duration'])}s"
                entry |= {"annotations": rule["annotations"]} if rule.get("annotations") else {}
            else:
                entry = {"record": rule["name"], "expr": rule["query"]}
            if rule.get("labels"):
                entry["labels"] = rule["labels"]
            rules.append(entry)
        out.append({"name": group["name"], "rules": rules})
    return {"groups": out}


_TIME = re.compile(r"alertname: (\S+), time: (\S+),")
_LABELS = re.compile(r"Labels:\{(.*)\}")
_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _parse_duration(text: str) -> int:
    """promtool's eval time (``1h15m0s``, ``50m``) in minutes."""
    units = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    return round(sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", text)))


def replay(rules: dict, night: Night, labels: dict[str, str]) -> dict[int, list[dict[str, str]]]:
    """The alerts named ``ALERT`` firing at each of the night's evaluation times, by promtool.

    The test file expects none at every time; promtool then prints those that did fire, with
    their labels, and says nothing of the times none did."""
    ok, failed = _counters(night)
    answered = {**labels, "http_response_code": "200"}
    failing = {**labels, "http_response_code": "500"}
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": _series(answered), "values": " ".join(f"{v:g}" for v in ok)},
                    {"series": _series(failing), "values": " ".join(f"{v:g}" for v in failed)},
                ],
                "alert_rule_test": [
                    {"eval_time": f"{m}m", "alertname": ALERT, "exp_alerts": []}
                    for m in night.expect
                ],
            }
        ],
    }
    promtool = executables.PROMTOOL.find()
    if promtool is None:
        raise RuntimeError(f"promtool is not installed. {executables.PROMTOOL.install_hint()}")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        (Path(folder) / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
        result = subprocess.run(
            [str(promtool), "test", "rules", "test.yml"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    said = result.stdout + result.stderr
    fired: dict[int, list[dict[str, str]]] = {m: [] for m in night.expect}
    if result.returncode != 0 and not _TIME.search(said):
        raise RuntimeError("promtool could not replay the rules: " + " ".join(said.split())[:500])
    # Each failure block: "alertname: X, time: T," then the alerts it got, one Labels:{...} each.
    blocks = _TIME.split(said)[1:]
    for name, at, body in zip(blocks[::3], blocks[1::3], blocks[2::3], strict=True):
        got = body.split("got:", 1)[-1]
        if name == ALERT:
            fired[_parse_duration(at)] = [dict(_PAIR.findall(m)) for m in _LABELS.findall(got)]
    return fired


def _pages(alerts: list[dict[str, str]]) -> bool:
    return any(a.get("severity") == PAGE for a in alerts)


def _alert_rule(groups: list[dict]) -> tuple[dict, dict] | None:
    for group in groups:
        for rule in group.get("rules", []):
            if rule.get("type") == "alerting" and rule.get("name") == ALERT:
                return group, rule
    return None


# ---- the lab --------------------------------------------------------------------------------


def team_file(ctx: LabContext) -> Path:
    return team_rules.directory(ctx.settings) / TEAM_FILE


def _loaded_at(ctx: LabContext) -> float | None:
    """When Prometheus last loaded its configuration and rules (its runtime information, to the
    second); None while it does not answer."""
    try:
        said = ctx.prometheus_api("/api/v1/status/runtimeinfo").get("lastConfigTime")
        return datetime.fromisoformat(str(said).replace("Z", "+00:00")).timestamp()
    except (httpx.HTTPError, ValueError):
        return None


def apply_rules(ctx: LabContext, text: str | None) -> None:
    """Write the team's file (``None`` removes it) and have Prometheus load it, as `mlops-lab
    restart prometheus` does; returns once Prometheus runs what was written."""
    path = team_file(ctx)
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # Its load time has whole seconds: a reload within the second of the last looks like none.
    before = _loaded_at(ctx)
    if before is not None and time.time() - before < 1.05:
        time.sleep(1.05 - (time.time() - before))
    asked = math.floor(time.time())
    ctx.restart("prometheus")
    ctx.wait_until(
        lambda: (_loaded_at(ctx) or 0) >= asked, 60, "Prometheus to load the team's rules"
    )


def broken_rules(variant: dict) -> str:
    """The team's rule file as the variant's flaw wrote it."""
    return _BROKEN[variant["written"]]()


def start(ctx: LabContext, variant: dict) -> dict:
    path = team_file(ctx)
    before = path.read_text() if path.exists() else None
    apply_rules(ctx, broken_rules(variant))
    if variant["written"] in _SILENCED:
        minutes, why = _SILENCED[variant["written"]]
        ctx.silence({"alertname": ALERT}, minutes, why, by="serving on-call")
    ctx.say(
        "[bold]Lab 21.[/] Postmortem action item. Serving lead: "
        f'"{_COMPLAINT[variant["written"]]} Fix our page before tonight: it must page for an '
        'outage like that one, and only for that."'
    )
    # The team's file as it was, for the reset (the silence is found by its labels).
    return {"before": before}


@dataclass(frozen=True)
class Replayed:
    """What the loaded page did in each night, or why it could not be replayed."""

    outage: dict[int, list[dict[str, str]]]
    within_budget: dict[int, list[dict[str, str]]]
    problem: str = ""


def _replayed(ctx: LabContext, groups: list[dict]) -> Replayed:
    if _alert_rule(groups) is None:
        return Replayed({}, {}, f"Prometheus runs no alert named {ALERT}")
    rules, labels = loaded_rules(groups), live_labels(ctx)
    try:
        return Replayed(replay(rules, OUTAGE, labels), replay(rules, WITHIN_BUDGET, labels))
    except RuntimeError as error:
        return Replayed({}, {}, str(error))


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    groups = ctx.rule_groups()
    found = _alert_rule(groups)
    played = _replayed(ctx, groups)
    first_page = OUTAGE_AT + PAGE_WITHIN_MIN
    after = [m for m, paging in OUTAGE.expect.items() if not paging]
    still = [m for m in after if _pages(played.outage.get(m, []))]
    noisy = [m for m in WITHIN_BUDGET.expect if _pages(played.within_budget.get(m, []))]
    labels = {
        "alertname": ALERT,
        "job": "serving",
        **((found[1].get("labels") or {}) if found else {}),
    }
    muted = ctx.silences_of(labels)
    problem = played.problem
    return [
        Condition.of(
            f"Prometheus runs the serving team's page, {ALERT}",
            found is not None and found[1].get("health") != "err",
            f"loaded from {found[0].get('file')}" if found else "",
            f"Prometheus has no alerting rule named {ALERT} loaded (its rules page lists what it "
            "runs; a file edited since its last reload is not what it runs)"
            if found is None
            else f"Prometheus fails to evaluate it: {found[1].get('lastError')}",
        ),
        Condition.of(
            f"it pages within {PAGE_WITHIN_MIN} minutes of an outage like last night's",
            not problem and _pages(played.outage.get(first_page, [])),
            f"replayed by promtool against the rules Prometheus runs: severity={PAGE} "
            f"{PAGE_WITHIN_MIN} minutes into the outage",
            problem
            or f"replayed by promtool against the rules Prometheus runs ({OUTAGE.name}): no "
            f"{ALERT} with severity={PAGE} firing {PAGE_WITHIN_MIN} minutes into the outage",
        ),
        Condition.of(
            "it stops paging once serving recovers",
            not problem and not still,
            f"quiet {QUIET_AFTER_MIN} minutes after the outage ended",
            problem
            or "in the replay it still pages "
            + ", ".join(f"{m - OUTAGE_AT - OUTAGE_MIN} minutes" for m in still)
            + " after serving recovered: the on-call chases an outage that is over",
        ),
        Condition.of(
            "it pages no one while the error budget holds",
            not problem and not noisy,
            f"quiet through {WITHIN_BUDGET.name}",
            problem
            or f"in the replay of {WITHIN_BUDGET.name} it pages at "
            + ", ".join(_clock(m) for m in noisy),
        ),
        Condition.of(
            "no silence mutes the page",
            not muted,
            "Alertmanager has no active silence for it",
            "Alertmanager mutes it: "
            + "; ".join(
                f"silence {s['id'][:8]} by {s.get('createdBy')} ({s.get('comment')}), until "
                f"{s.get('endsAt')}"
                for s in muted
            ),
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    found = _alert_rule(ctx.rule_groups())
    if found is None:
        running = f"Prometheus runs no rule named {ALERT} now."
    else:
        rule = found[1]
        running = (
            f"Prometheus runs it from {found[0].get('file')}: "
            f"`{' '.join(str(rule['query']).split())}`, for {int(rule.get('duration', 0))}s."
        )
    return [
        "Replay last night on paper before touching anything: 40 % of /predict requests failing "
        "for twenty minutes. What does the page's expression give ten minutes in, when does it "
        "fire, and when does it stop? And on an ordinary night?",
        running + " Alertmanager's silences (`amtool silence query`, or its UI) say whether "
        "anyone muted it.",
        "`promtool test rules` replays made-up series against a rule file: write last night as "
        "input_series (a counter for answered and one for failed requests) and ask for the "
        "alert at 15 minutes and 30 minutes after the end. An error budget is 1 minus the target "
        "as a ratio; a fast-burn page needs a long window to be sure and a short one to stop "
        "promptly (the SRE workbook's multiwindow, multi-burn-rate alerts).",
        f"Edit {team_file(ctx)}, check it with `promtool check rules`, apply it with `mlops-lab "
        "restart prometheus` (it checks your file, then reloads), and expire any silence that "
        "mutes the page.",
    ]


def unmute(ctx: LabContext) -> None:
    labels = {"alertname": ALERT, "job": "serving", "severity": PAGE, "slo": "serving-availability"}
    for silence in ctx.silences_of(labels):
        ctx.expire_silence(silence["id"])


def solve(ctx: LabContext, progress: LabProgress) -> None:
    apply_rules(ctx, REFERENCE)
    unmute(ctx)


def reset(ctx: LabContext, progress: LabProgress) -> None:
    unmute(ctx)
    apply_rules(ctx, progress.state.get("before"))

"""An exam: on-call incidents back to back under a time limit, scored, with a report.

Each incident is an on-call round (:mod:`mlops_lab.interview.oncall`): unnamed, paged once its
symptom shows, worked with the same tools. When its check passes the exam records it, puts the
platform back and pages the next one; when the time is up or the learner gives up, the exam ends
and writes its report (Markdown and HTML in ``<learner_home>/exams/``).

The exam file (``<learner_home>/exam.json``) holds only incidents that are over (named, with
their figures); the one in progress is the on-call round's, hidden as it is there, and the next
ones are drawn only when they are paged.

The score counts, per incident, time to mitigate (the first moment after which serving answered,
as the prediction log shows, and Prometheus saw its 5xx share under the error SLO and its p99
under the latency SLO, until the fix), time to resolve (the check passed), hints taken and
whether the reference fix was applied (:func:`points`).
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from mlops_lab.interview.oncall import Oncall, Round
from mlops_lab.interview.timing import clock
from mlops_lab.lab_engine.catalog import Lab, find
from mlops_lab.lab_engine.engine import CheckReport
from mlops_lab.lab_engine.kit import SEED, VARIANT
from platform_core import promql, state_file
from platform_core.errors import PlatformError
from platform_core.locks import learner_locked
from platform_core.settings import Settings

EXAM_FILE = "exam.json"
WHAT = "the exam"
REPORTS = "exams"

RESOLVED = "resolved"
ASSISTED = "resolved with the reference fix"
GAVE_UP = "given up"
OUT_OF_TIME = "out of time"

# Points per incident: resolving it unaided, then speed (mitigation and resolution, each against
# the time the exam allows one incident), less hints.
RESOLVE_POINTS = 60
SPEED_POINTS = 20  # for each of time to mitigate and time to resolve
HINT_COST = 5
MAX_HINT_COST = 30


@dataclass
class Incident:
    """One incident of the exam, once it is over."""

    lab: str
    title: str
    outcome: str
    paged_at: float
    ended_at: float
    hints: int
    seed: int | None = None
    variant: int | None = None
    # Whether serving's SLOs were breached after the page, and when they held again for good.
    slo_breached: bool = False
    mitigated_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resolve_s(self) -> float | None:
        return self.ended_at - self.paged_at if self.outcome in (RESOLVED, ASSISTED) else None

    @property
    def mitigate_s(self) -> float | None:
        """Seconds from the page until the SLOs held again; with no breach, until resolved."""
        if self.mitigated_at is not None:
            return max(0.0, self.mitigated_at - self.paged_at)
        return None if self.slo_breached else self.resolve_s


def points(incident: Incident, budget_s: float) -> int:
    """An incident's points (at most 100): 60 for resolving it without the reference fix, up to
    20 for the time to mitigate and 20 for the time to resolve (full at once, none at the time
    the exam allows one incident), less 5 per hint (at most 30). Assisted, given up or out of
    time: none."""
    if incident.outcome != RESOLVED:
        return 0

    def speed(seconds: float | None) -> float:
        if seconds is None:
            return 0.0
        return SPEED_POINTS * max(0.0, 1.0 - seconds / budget_s)

    earned = RESOLVE_POINTS + speed(incident.mitigate_s) + speed(incident.resolve_s)
    return max(0, round(earned - min(MAX_HINT_COST, HINT_COST * incident.hints)))


@dataclass
class ExamState:
    started_at: float
    deadline: float
    count: int
    pool: list[str] | None
    done: list[Incident] = field(default_factory=list)
    ended_at: float | None = None
    report: str | None = None

    @property
    def budget_s(self) -> float:
        """The time the exam allows one incident."""
        return (self.deadline - self.started_at) / self.count

    @property
    def score(self) -> int:
        return sum(points(i, self.budget_s) for i in self.done)

    @property
    def max_score(self) -> int:
        return 100 * self.count

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> ExamState:
        done = [Incident(**i) for i in raw.get("done", [])]
        return cls(**{**raw, "done": done})


def answered_at(ctx, since: float, until: float) -> list[float]:
    """When serving answered, from the prediction log: each answered row's time."""
    import datetime as dt

    import sqlalchemy as sa

    from platform_core.prediction_log import ANSWERED, predictions

    query = sa.select(predictions.c.created_at).where(
        predictions.c.model_name == ctx.settings.model_name,
        predictions.c.created_at >= dt.datetime.fromtimestamp(since, dt.UTC),
        predictions.c.created_at <= dt.datetime.fromtimestamp(until, dt.UTC),
        ANSWERED,
    )
    with ctx.log_engine().connect() as conn:
        rows = conn.execute(query).scalars().all()
    # SQLite hands back naive datetimes: the log writes UTC.
    return sorted((at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp() for at in rows)


def slo_timeline(
    ctx, since: float, until: float, traffic: bool = True, step_s: float | None = None
) -> list[tuple[float, bool]]:
    """Whether serving met its SLOs at each step from a window after ``since`` to ``until``: it
    answered (the prediction log has answers in the window before the step, for an incident
    with traffic),
    and Prometheus saw its 5xx share and its p99 over that window under the alert thresholds.
    A step with no figure from Prometheus (nothing scraped: monitoring can be the incident) is
    not counted against it."""
    from monitoring.rules import duration, serving_error_ratio, serving_latency

    settings = ctx.settings
    step = step_s or max(settings.scrape_interval_s, 1.0)
    window_s = max(4 * settings.scrape_interval_s, 20.0)
    window = duration(window_s)
    checks: list[tuple[str, Callable[[float], bool]]] = [
        (f"max({serving_error_ratio(window)})", lambda v: v > settings.alert_error_ratio),
        (f"max({serving_latency(0.99, window)})", lambda v: v > settings.alert_latency_p99_s),
    ]
    # From a window after the page on: a window that reaches back before it would measure the
    # platform as the previous incident or its reset left it (a restart's slow first requests).
    since = min(since + window_s, until)
    steps = [since + i * step for i in range(int((until - since) // step) + 1)]
    bad = [False] * len(steps)
    for expr, breached in checks:
        for series in promql.query_range(settings, expr, since, until, step):
            for at, value in series["values"]:
                index = round((at - since) / step)
                if 0 <= index < len(steps) and not math.isnan(value) and breached(value):
                    bad[index] = True
    if traffic:
        answers = answered_at(ctx, since - window_s, until)
        for index, at in enumerate(steps):
            first = bisect.bisect_left(answers, at - window_s)
            if first >= len(answers) or answers[first] > at:
                bad[index] = True  # nothing answered in the window before this step
    return [(at, not missed) for at, missed in zip(steps, bad, strict=True)]


def mitigation(timeline: list[tuple[float, bool]]) -> tuple[bool, float | None]:
    """(breached, mitigated at): whether any step missed the SLOs, and the first step of the
    last unbroken run of steps that met them (None when the last step still missed them)."""
    if not any(not good for _, good in timeline):
        return False, None
    at = None
    for when, good in timeline:
        if good and at is None:
            at = when
        elif not good:
            at = None
    return True, at


class Exam:
    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.path = settings.learner_home / EXAM_FILE
        self.console = console or Console(stderr=True)
        self.oncall = Oncall(settings, console=self.console)

    # ---- state --------------------------------------------------------------------------------

    def state(self) -> ExamState | None:
        raw = state_file.read_json(self.path, dict, WHAT)
        if raw is None:
            return None
        try:
            return ExamState.from_json(raw)
        except (TypeError, ValueError, KeyError) as error:
            state_file.set_aside(self.path, WHAT, f"it cannot be read ({error})")
            return None

    def _save(self, state: ExamState) -> None:
        state_file.write_json(self.path, state.to_json())

    def running(self) -> ExamState | None:
        state = self.state()
        return state if state is not None and state.ended_at is None else None

    def require_running(self) -> ExamState:
        state = self.running()
        if state is None:
            raise PlatformError(
                "No exam is running.",
                hint="`mlops-lab exam start` pages you with the first incident.",
            )
        return state

    # ---- start --------------------------------------------------------------------------------

    @learner_locked
    def start(
        self,
        count: int,
        minutes: float,
        pool: list[str] | None = None,
        rng: random.Random | None = None,
    ) -> tuple[ExamState, Round]:
        if self.running() is not None:
            raise PlatformError(
                "An exam is already running.",
                hint="`mlops-lab exam status`; `mlops-lab exam giveup` ends it with its report.",
            )
        if self.oncall.current() is not None:
            raise PlatformError(
                "An on-call round is running; an exam pages you with its own incidents.",
                hint="Finish it (`mlops-lab oncall check`) or `mlops-lab oncall giveup`.",
            )
        labs = self._eligible([find(i).id for i in pool] if pool else None, done=[])
        if len(labs) < count:
            raise PlatformError(
                f"An exam of {count} incidents needs {count} labs that run here; "
                f"{len(labs)} do" + (" in the pool you gave" if pool else "") + ".",
                hint="Ask for fewer (`--count`) or a larger pool.",
            )
        now = time.time()
        state = ExamState(
            now, now + minutes * 60, count, [lab.id for lab in labs] if pool else None
        )
        self._save(state)
        return state, self._page_next(state, rng)

    def _eligible(self, pool: list[str] | None, done: list[str]) -> list[Lab]:
        return [
            lab
            for lab in self.oncall.eligible(include_solved=True)
            if (pool is None or lab.id in pool) and lab.id not in done
        ]

    def _page_next(self, state: ExamState, rng: random.Random | None = None) -> Round:
        labs = self._eligible(state.pool, [i.lab for i in state.done])
        return self.oncall.start(include_solved=True, rng=rng, among=labs)

    def await_symptom(self, round_: Round, on_wait=None) -> Round:
        from mlops_lab.interview.oncall import symptom_bound_s

        return self.oncall.await_symptom(round_, symptom_bound_s(self.settings), on_wait=on_wait)

    # ---- during -------------------------------------------------------------------------------

    def time_left_s(self, state: ExamState) -> float:
        return state.deadline - time.time()

    @learner_locked
    def check(
        self, wait_s: float = 0.0, on_pending: Callable | None = None, why: bool = False
    ) -> tuple[CheckReport | None, ExamState, Round | None]:
        """The current incident's check. A pass records it and pages the next incident (the
        returned round), or ends the exam after the last. Past the deadline the exam ends
        without checking: (None, the ended exam, None)."""
        state = self.require_running()
        round_ = self.oncall.require_current()
        if self.time_left_s(state) <= 0:
            return None, self._end(state, round_, OUT_OF_TIME), None
        wait_s = min(wait_s, max(0.0, self.time_left_s(state)))
        report = self.oncall.check(wait_s=wait_s, on_pending=on_pending, why=why)
        if not report.passed:
            return report, state, round_
        progress = self.oncall.engine.store.get(round_.lab.id)
        outcome = ASSISTED if progress.assisted else RESOLVED
        state.done.append(self._incident(round_, outcome, progress.solved_at or time.time()))
        self._save(state)
        # Back to golden before the next page (the next incident starts from a sound platform).
        self.oncall.engine.reset(round_.lab)
        if len(state.done) >= state.count:
            return report, self._finish(state), None
        return report, state, self._page_next(state)

    @learner_locked
    def giveup(self) -> ExamState:
        state = self.require_running()
        round_ = self.oncall.current()
        return self._end(state, round_, GAVE_UP)

    def _end(self, state: ExamState, round_: Round | None, outcome: str) -> ExamState:
        if round_ is not None:
            state.done.append(self._incident(round_, outcome, time.time()))
            self._save(state)
            self.oncall.giveup()
        return self._finish(state)

    def _incident(self, round_: Round, outcome: str, ended_at: float) -> Incident:
        lab = round_.lab
        progress = self.oncall.engine.store.get(lab.id)
        paged_at = round_.paged_at or round_.started_at
        try:
            ctx = self.oncall.engine.context()
            timeline = slo_timeline(ctx, paged_at, ended_at, traffic=lab.traffic)
            breached, mitigated_at = mitigation(timeline)
        except PlatformError:
            breached, mitigated_at = False, None  # no Prometheus: not measured
        if breached and mitigated_at is None and outcome in (RESOLVED, ASSISTED):
            # The check passed (serving answers) before Prometheus's last scrape and window
            # showed it: mitigated by the fix, at the latest.
            mitigated_at = ended_at
        events = [
            {**e, "after_s": round(e["at"] - paged_at, 1)}
            for e in progress.events
            if e.get("at", 0) >= round_.started_at
        ]
        return Incident(
            lab=lab.id,
            title=lab.title,
            outcome=outcome,
            paged_at=paged_at,
            ended_at=ended_at,
            hints=progress.hints_used,
            seed=progress.state.get(SEED),
            variant=progress.state.get(VARIANT),
            slo_breached=breached,
            mitigated_at=mitigated_at,
            events=events,
        )

    def _finish(self, state: ExamState) -> ExamState:
        state.ended_at = time.time()
        state.report = str(write_report(self.settings, state))
        self._save(state)
        return state


# ---- the report ---------------------------------------------------------------------------------


def report_markdown(state: ExamState) -> str:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(state.started_at))
    minutes = (state.deadline - state.started_at) / 60
    lines = [
        f"# Exam of {started}: {state.score} / {state.max_score}",
        "",
        f"{state.count} incidents in {minutes:.0f} minutes; {len(state.done)} paged. Per "
        f"incident: {RESOLVE_POINTS} points for resolving it without the reference fix, up to "
        f"{SPEED_POINTS} for the time to mitigate and {SPEED_POINTS} for the time to resolve "
        f"(against {clock(state.budget_s)} an incident), less {HINT_COST} per hint.",
        "",
        "| # | Incident | Outcome | Time to mitigate | Time to resolve | Hints | Points |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, incident in enumerate(state.done, 1):
        mitigate = clock(incident.mitigate_s)
        if not incident.slo_breached and incident.mitigate_s is not None:
            mitigate += " (no SLO breach)"
        lines.append(
            f"| {number} | Lab {incident.lab}: {incident.title} | {incident.outcome} | "
            f"{mitigate} | {clock(incident.resolve_s)} | {incident.hints} | "
            f"{points(incident, state.budget_s)} |"
        )
    for number, incident in enumerate(state.done, 1):
        lines += ["", f"## {number}. Lab {incident.lab}: {incident.title}", ""]
        if incident.seed is not None:
            lines += [
                f"Variant {incident.variant}, seed {incident.seed}: `mlops-lab lab start "
                f"{incident.lab} --seed {incident.seed}` meets it again.",
                "",
            ]
        lines += ["| After the page | What happened |", "|---|---|"]
        timeline = [(e["after_s"], _event(e)) for e in incident.events]
        if incident.mitigated_at is not None:
            timeline.append((incident.mitigated_at - incident.paged_at, "serving within its SLOs"))
        timeline.append((incident.ended_at - incident.paged_at, incident.outcome))
        for after, what in sorted(timeline, key=lambda pair: pair[0]):
            lines.append(f"| {clock(max(after, 0.0))} | {what} |")
    return "\n".join(lines) + "\n"


def _event(event: dict) -> str:
    kind = event.get("kind", "")
    if kind == "checked":
        failed = event.get("failed") or []
        return "check passed" if event.get("passed") else f"check: {len(failed)} conditions NO"
    if kind == "hint":
        return f"hint ({event.get('tier')})"
    if kind == "answered":
        return f"answered {', '.join(event.get('keys', []))}"
    return kind


def write_report(settings: Settings, state: ExamState) -> Path:
    from mlops_lab.interview.portfolio import standalone_html

    folder = settings.learner_home / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(state.started_at))
    markdown = report_markdown(state)
    path = folder / f"exam-{stamp}.md"
    path.write_text(markdown)
    path.with_suffix(".html").write_text(standalone_html(markdown, title="mlops-lab exam"))
    return path

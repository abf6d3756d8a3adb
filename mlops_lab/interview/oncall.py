"""On-call mode: a random unsolved incident, started without saying which lab it is.

The learner gets what an on-call engineer gets: the page (alert, summary, where to look, the
complaint), once the symptom it names is there, the time it started and where the platform's
tools are. The lab's id, title and README stay hidden until the check passes or the learner gives
up, and so does which lab the `mlops-lab lab` commands would act on (they refuse alike for every
lab while a round runs).

The round is written to ``<learner_home>/oncall.json`` so every `mlops-lab oncall ...` process
finds it. The lab is there as a token, the lab's id hashed with a salt kept beside it, so a
learner glancing at the file does not read which lab it is. That is no security (hashing the
seventeen ids with the salt finds it), only no accidental spoiler. The round's commands hold the
learner's lock, as the lab engine's do: two `oncall start`s at once page once.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import httpx
from rich.console import Console

from mlops_lab.lab_engine.catalog import Lab, all_labs, find
from mlops_lab.lab_engine.engine import CheckReport, Engine
from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED
from platform_core import state_file
from platform_core.errors import PlatformError
from platform_core.locks import learner_locked
from platform_core.settings import Settings

ROUND_FILE = "oncall.json"
WHAT = "the on-call round"
# The golden path is a question from the product team, not an incident to be paged for.
NOT_AN_INCIDENT = ("01",)
# An expert round's two faults, first started first: pairs whose faults live in different places
# and whose fixes do not undo each other (a restart of Prometheus renders its configuration
# again, so lab 21's fix would mend lab 06's fault: they never pair). A lab starts only on a
# healthy platform, so one that takes a service down comes second. Each lab draws its own
# variant. tests/labs/test_oncall_expert.py proves each pair (one solved together, the other
# given up); a pair is added with its test.
EXPERT_PAIRS: tuple[tuple[str, str], ...] = (("21", "05"), ("06", "05"))
# The red herring an expert round leaves firing: a capacity team's warning that is true and no
# fault (Prometheus ingests more than a forecast nobody updated). A team rule file of its own
# (monitoring.team_rules), removed when the round ends.
DECOY_FILE = "capacity-forecast.yml"
DECOY_ALERT = "MonitoringIngestAboveForecast"
_DECOY_RULES = """\
# Capacity team: warn when Prometheus ingests more than this quarter's forecast.
groups:
  - name: capacity-forecast
    rules:
      - alert: MonitoringIngestAboveForecast
        expr: sum(rate(prometheus_tsdb_head_samples_appended_total[2m])) > 10
        labels:
          severity: warning
        annotations:
          summary: "Prometheus ingests more samples a second than the quarter's forecast"
"""
# Hints written for lab mode name the lab's own commands; on call they name the round's.
_LAB_COMMAND = re.compile(r"mlops-lab lab (check|hint|solve) \d+")
# What a page's alert line names: "TargetDown (job=serving, severity: critical)". A line that
# starts with anything else ("(no alert: a business complaint)") names no alert.
_ALERT = re.compile(r"\s*(?P<name>[A-Z][A-Za-z0-9_]*)\b(?:\s*\((?P<labels>[^)]*)\))?")
_LABEL = re.compile(r"(\w+)=([\w.:-]+)")


@dataclass(frozen=True)
class Symptom:
    """What the page says should be observable, and whether it was when the page went out."""

    what: str
    visible: bool
    seconds: float = 0.0


@dataclass(frozen=True)
class Round:
    lab: Lab
    started_at: float
    symptom: Symptom | None = None
    # When the page went out: the on-call clock runs from there, as nothing can be done before.
    paged_at: float | None = None
    # An expert round's second fault: started after ``lab``, reset before it.
    second: Lab | None = None

    @property
    def labs(self) -> tuple[Lab, ...]:
        return (self.lab,) if self.second is None else (self.lab, self.second)

    @property
    def elapsed_s(self) -> float:
        return time.time() - (self.paged_at or self.started_at)

    def seconds_to(self, at: float) -> float:
        """From the page (or the start, for a round paged before pages waited) to ``at``."""
        return at - (self.paged_at or self.started_at)


def _kept(said: str | None, new: str) -> str:
    """An expert round's answer so far with ``new`` added (once)."""
    if not said:
        return new
    return said if new in said.split("; ") else f"{said}; {new}"


def token(salt: str, lab_id: str) -> str:
    return hashlib.sha256(f"{salt}:{lab_id}".encode()).hexdigest()[:16]


def _round(raw: dict) -> Round:
    """The round as :meth:`Oncall._write` wrote it (or an earlier release did, with the lab's id
    in clear)."""

    def named(key: str) -> Lab:
        return next(lab for lab in all_labs() if token(raw["salt"], lab.id) == raw[key])

    lab = find(raw["lab"]) if "lab" in raw else named("round")
    symptom = raw.get("symptom")
    paged_at = raw.get("paged_at")
    return Round(
        lab,
        float(raw["started_at"]),
        Symptom(**symptom) if symptom else None,
        None if paged_at is None else float(paged_at),
        named("second") if raw.get("second") else None,
    )


def page_alert(page: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The alert a page names and the labels it gives with ``=``, or None for a page that
    names no alert."""
    match = _ALERT.match(page.get("alert", ""))
    if match is None:
        return None
    return match["name"], dict(_LABEL.findall(match["labels"] or ""))


def symptom_bound_s(settings: Settings) -> float:
    """How long a page waits at most for its symptom: the slowest alert to fire after the
    fault (a drift alert needs the window to fill with incident traffic, a computation, then its
    ``for``), plus a scrape and a rule evaluation on each side."""
    window_s = settings.drift_window_rows / settings.front_end_rate_per_s
    drift_s = window_s + settings.drift_interval_s + settings.drift_alert_for_s
    cycles_s = 2 * (settings.scrape_interval_s + settings.rule_evaluation_interval_s)
    return max(settings.alert_for_s, drift_s) + cycles_s + 30


def await_symptom(
    what: str,
    observed: Callable[[], bool],
    bound_s: float,
    every_s: float = 2.0,
    on_wait: Callable[[float], None] | None = None,
) -> Symptom:
    """Poll ``observed`` until it is true or ``bound_s`` has passed. A probe that cannot answer
    yet (Prometheus busy, serving restarting) counts as not observed."""
    started = time.monotonic()
    while True:
        try:
            seen = observed()
        except (PlatformError, httpx.HTTPError):
            seen = False
        elapsed = time.monotonic() - started
        if seen or elapsed >= bound_s:
            return Symptom(what, seen, elapsed)
        if on_wait is not None:
            on_wait(elapsed)
        time.sleep(min(every_s, max(0.0, bound_s - elapsed)))


class Oncall:
    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.path = settings.learner_home / ROUND_FILE
        # Labs announce themselves as they start ("Lab 05. Alert: ..."), and so do resets of
        # what they changed: on call that gives the incident away, so the engine talks to a
        # console nobody reads. Giving up reveals the lab, so it may use the real console.
        self.console = console or Console(stderr=True)
        self.engine = Engine(settings, console=Console(stderr=True, quiet=True), on_call=True)

    # ---- the round ----------------------------------------------------------------------------

    def current(self) -> Round | None:
        """The round in progress, or solved but not yet told to the learner; a round whose lab
        was reset some other way is over and forgotten. A round file lost or unreadable while
        the progress still holds the round is written again from it."""
        round_ = self._read()
        if round_ is None:
            lab_id = self.engine.round_lab()
            if lab_id is None:
                self._forget()
                return None
            progress = self.engine.store.get(lab_id)
            round_ = Round(find(lab_id), progress.started_at or time.time())
            self._write(round_)
        states = [self.engine.store.get(lab.id) for lab in round_.labs]
        running = any(p.status == IN_PROGRESS for p in states)
        solved_now = all(
            p.status == SOLVED and (p.solved_at or 0) >= round_.started_at for p in states
        )
        if running or solved_now:
            return round_
        self._forget()
        return None

    def require_current(self) -> Round:
        round_ = self.current()
        if round_ is None:
            raise PlatformError(
                "No on-call round is running.",
                hint="`mlops-lab oncall start` pages you with a random incident.",
            )
        return round_

    def eligible(self, include_solved: bool = False) -> list[Lab]:
        """Labs that run here and are incidents; unless ``include_solved``, only those not yet
        solved unaided (a solve with the reference fix does not count)."""
        progress = self.engine.store.load()
        monitored = self.engine.context().runtime.monitoring_installed()

        def solved(lab_id: str) -> bool:
            mine = progress.get(lab_id)
            return mine is not None and mine.status == SOLVED and not mine.assisted

        return [
            lab
            for lab in all_labs()
            if lab.runs_on(self.engine.runtime)
            and (monitored or not lab.monitoring)
            and lab.id not in NOT_AN_INCIDENT
            and (include_solved or not solved(lab.id))
        ]

    @learner_locked
    def start(
        self,
        include_solved: bool = False,
        rng: random.Random | None = None,
        among: list[Lab] | None = None,
    ) -> Round:
        """Page with a random incident (of ``among`` when given: an exam's draw)."""
        self._refuse_a_second_round()
        labs = self.eligible(include_solved) if among is None else among
        if not labs:
            raise PlatformError(
                f"You have solved every incident that runs on the {self.engine.runtime} runtime, "
                "so there is nothing left to page you with.",
                hint="Practise again with solved ones: `mlops-lab oncall start --include-solved`.",
            )
        lab = (rng or random.Random()).choice(labs)
        progress = self.engine.start(lab, mode="oncall")
        round_ = Round(lab, progress.started_at or time.time())
        self._write(round_)
        return round_

    def expert_pairs(self) -> list[tuple[Lab, Lab]]:
        """The pairs an expert round draws from: both labs run here."""
        runnable = {lab.id: lab for lab in self.eligible(include_solved=True)}
        return [
            (runnable[a], runnable[b]) for a, b in EXPERT_PAIRS if a in runnable and b in runnable
        ]

    @learner_locked
    def start_expert(
        self, rng: random.Random | None = None, among: list[tuple[str, str]] | None = None
    ) -> Round:
        """Page with two unrelated incidents at once (a pair of ``among`` when given), and a red
        herring alert that is no fault: the round ends when both incidents are fixed."""
        self._refuse_a_second_round()
        pairs = [(a, b) for a, b in self.expert_pairs() if among is None or (a.id, b.id) in among]
        if not pairs:
            raise PlatformError(
                f"No expert round runs on the {self.engine.runtime} runtime: its incidents need "
                "the local runtime with Prometheus and Alertmanager.",
                hint="`mlops-lab oncall start` pages you with one incident.",
            )
        first, second = (rng or random.Random()).choice(pairs)
        self._plant_decoy()
        try:
            progress = self.engine.start(first, mode="oncall")
            try:
                self.engine.start(second, mode="oncall", alongside=first.id)
            except BaseException:
                self.engine.reset(first)
                raise
        except BaseException:
            self._remove_decoy()
            raise
        round_ = Round(first, progress.started_at or time.time(), second=second)
        self._write(round_)
        return round_

    def _refuse_a_second_round(self) -> None:
        running = self.current()
        if running is not None:
            if any(self.engine.store.get(lab.id).status == IN_PROGRESS for lab in running.labs):
                since = time.strftime("%H:%M:%S", time.localtime(running.started_at))
                raise PlatformError(
                    f"An on-call round is already running (paged at {since}).",
                    hint="`mlops-lab oncall status` shows the page again; `mlops-lab oncall "
                    "check` when it is fixed; `mlops-lab oncall giveup` to end it.",
                )
            self._forget()  # solved already: that round is over
        busy = self.engine.store.in_progress()
        if busy:
            raise PlatformError(
                f"Lab {busy[0]} is in progress; one incident at a time keeps the symptoms "
                "readable.",
                hint=f"Finish it (`mlops-lab lab check {busy[0]}`) or put the platform back with "
                f"`mlops-lab lab reset {busy[0]}`, then go on call.",
            )

    def _decoy_path(self):
        from monitoring import team_rules

        return team_rules.directory(self.settings) / DECOY_FILE

    def _plant_decoy(self) -> None:
        path = self._decoy_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_DECOY_RULES)
        # A reload, not a restart: a restart renders Prometheus's configuration again, which
        # would undo a fault of the round's in it.
        self.engine.context().reload("prometheus")

    def _remove_decoy(self) -> None:
        path = self._decoy_path()
        if path.exists():
            path.unlink()
            self.engine.context().reload("prometheus")

    def symptom_probe(self, lab: Lab) -> tuple[str, Callable[[], bool]]:
        """What to wait for before paging, in the page's own words: the alert it names firing,
        when Prometheus answers; else the incident's own check failing (the platform really is
        broken)."""
        alert = page_alert(lab.page)
        ctx = self.engine.context()
        if alert is not None:
            name, labels = alert
            try:
                ctx.query("vector(1)")
            except PlatformError:
                pass  # no Prometheus to ask: the check it is
            else:
                where = ", ".join(f"{k}={v}" for k, v in labels.items())
                what = f"{name} ({where}) firing" if where else f"{name} firing"
                return what, lambda: bool(ctx.firing(name, **labels))

        def check_fails() -> bool:
            return not self.engine.evaluate(lab).passed

        return "the incident's own check failing", check_fails

    def await_symptom(
        self, round_: Round, bound_s: float, on_wait: Callable[[str, float], None] | None = None
    ) -> Round:
        """Wait (at most ``bound_s`` in all) until the symptom each page names is observable;
        the round remembers whether they were, so the page can say "symptom not yet visible"."""
        started = time.monotonic()
        seen: list[Symptom] = []
        for lab in round_.labs:
            what, observed = self.symptom_probe(lab)
            left = max(0.0, bound_s - (time.monotonic() - started))
            seen.append(
                await_symptom(
                    what,
                    observed,
                    left,
                    on_wait=None if on_wait is None else lambda s, w=what: on_wait(w, s),
                )
            )
        symptom = Symptom(
            "; ".join(s.what for s in seen),
            all(s.visible for s in seen),
            time.monotonic() - started,
        )
        round_ = replace(round_, symptom=symptom, paged_at=time.time())
        self._write(round_)
        return round_

    # ---- during the round ---------------------------------------------------------------------

    def pages(self, round_: Round) -> list[dict[str, str]]:
        """What the pager says, nothing more: each incident's [page] in a fixed order (an expert
        round's two in the order they were started)."""
        order = ("alert", "summary", "look", "complaint")
        return [
            {key: str(lab.page[key]) for key in order if key in lab.page} for lab in round_.labs
        ]

    def urls(self) -> list[tuple[str, str]]:
        from mlops_lab.runtime.local.runtime import LocalRuntime

        urls = [("Prometheus alerts", f"{self.settings.prometheus_url}/alerts")]
        installed = {s.name: s for s in LocalRuntime(self.settings, console=self.console).services}
        if "grafana" in installed:
            urls.append(("Grafana", installed["grafana"].url(self.settings)))
        urls.append(("Alertmanager", self.settings.alertmanager_url))
        urls.append(("Every service", "`mlops-lab status`"))
        return urls

    def hints_used(self, round_: Round) -> int:
        return sum(self.engine.store.get(lab.id).hints_used for lab in round_.labs)

    def _open(self, round_: Round) -> list[Lab]:
        """The round's incidents not fixed yet (each passes its own check once)."""
        return [lab for lab in round_.labs if self.engine.store.get(lab.id).status == IN_PROGRESS]

    @learner_locked
    def hint(self) -> tuple[int, int, str]:
        """The next hint for the first incident of the round not fixed yet."""
        round_ = self.require_current()
        lab = next(iter(self._open(round_)), round_.lab)
        tier, tiers, text = self.engine.hint(lab)
        return tier, tiers, _LAB_COMMAND.sub(r"mlops-lab oncall \1", text)

    @learner_locked
    def check(
        self, wait_s: float = 0.0, on_pending: Callable | None = None, why: bool = False
    ) -> CheckReport:
        """Each incident's own check (an expert round's one after the other); a pass of all
        ends the round (the caller reveals the labs). ``why``: the reasons behind each NO are
        shown, which counts as a hint."""
        round_ = self.require_current()
        reports = [
            self.engine.check(lab, wait_s=wait_s, on_pending=on_pending, why=why)
            for lab in round_.labs
        ]
        report = CheckReport(
            round_.lab,
            [c for r in reports for c in r.conditions],
            sum(r.seconds for r in reports),
        )
        if report.passed:
            self._end(round_)
        return report

    @learner_locked
    def answer(self, answers: dict[str, str]) -> None:
        """Record what the learner found, for the round's incident (unnamed). In an expert round
        every answer is kept, added to those before, for each incident still open (one cause
        each, said in turn)."""
        round_ = self.require_current()
        if round_.second is None:
            self.engine.answer(round_.lab, answers)
            return
        for lab in self._open(round_):
            said = self.engine.store.get(lab.id).answers
            self.engine.answer(
                lab, {key: _kept(said.get(key), new) for key, new in answers.items()}
            )

    @learner_locked
    def solve(self) -> Round:
        """Apply the reference fix of every incident not fixed yet: the round is assisted, not a
        mitigation of the learner's."""
        round_ = self.require_current()
        for lab in self._open(round_):
            self.engine.solve(lab)
        return round_

    def assisted(self, round_: Round) -> bool:
        return any(self.engine.store.get(lab.id).assisted for lab in round_.labs)

    @learner_locked
    def giveup(self) -> Round:
        """End the round: the platform goes back to its golden state, the labs are revealed."""
        round_ = self.require_current()
        engine = Engine(self.settings, console=self.console, on_call=True)
        for lab in reversed(round_.labs):
            engine.reset(lab)
            progress = self.engine.store.get(lab.id)
            progress.event("gave up on call", seconds=round_.elapsed_s)
            self.engine.store.save(lab.id, progress)
        self._end(round_)
        return round_

    def _end(self, round_: Round) -> None:
        if round_.second is not None:
            self._remove_decoy()
        self._forget()

    def _read(self) -> Round | None:
        """The round file, or None: none, or one that cannot be read (set aside with a warning;
        :meth:`current` writes it again from the progress, which holds the round too)."""
        raw = state_file.read_json(self.path, dict, WHAT)
        if raw is None:
            return None
        try:
            return _round(raw)
        except KeyError as error:
            problem = f"it has no {error} field"
        except (StopIteration, PlatformError):
            problem = "it names no lab of this release"
        except (ValueError, TypeError):
            problem = "a field of it has the wrong type"
        state_file.set_aside(self.path, WHAT, problem)
        return None

    @learner_locked
    def _write(self, round_: Round) -> None:
        salt = secrets.token_hex(8)
        document: dict = {
            "round": token(salt, round_.lab.id),
            "salt": salt,
            "started_at": round_.started_at,
        }
        if round_.symptom is not None:
            document["symptom"] = asdict(round_.symptom)
        if round_.paged_at is not None:
            document["paged_at"] = round_.paged_at
        if round_.second is not None:
            document["second"] = token(salt, round_.second.id)
        state_file.write_json(self.path, document)

    @learner_locked
    def _forget(self) -> None:
        self.path.unlink(missing_ok=True)

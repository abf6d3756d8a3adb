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
from dataclasses import asdict, dataclass

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

    @property
    def elapsed_s(self) -> float:
        return time.time() - (self.paged_at or self.started_at)

    def seconds_to(self, at: float) -> float:
        """From the page (or the start, for a round paged before pages waited) to ``at``."""
        return at - (self.paged_at or self.started_at)


def token(salt: str, lab_id: str) -> str:
    return hashlib.sha256(f"{salt}:{lab_id}".encode()).hexdigest()[:16]


def _round(raw: dict) -> Round:
    """The round as :meth:`Oncall._write` wrote it (or an earlier release did, with the lab's id
    in clear)."""
    if "lab" in raw:
        lab = find(raw["lab"])
    else:
        lab = next(lab for lab in all_labs() if token(raw["salt"], lab.id) == raw["round"])
    symptom = raw.get("symptom")
    paged_at = raw.get("paged_at")
    return Round(
        lab,
        float(raw["started_at"]),
        Symptom(**symptom) if symptom else None,
        None if paged_at is None else float(paged_at),
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
        progress = self.engine.store.get(round_.lab.id)
        solved_now = progress.status == SOLVED and (progress.solved_at or 0) >= round_.started_at
        if progress.status == IN_PROGRESS or solved_now:
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
        running = self.current()
        if running is not None:
            if self.engine.store.get(running.lab.id).status == IN_PROGRESS:
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

    def symptom_probe(self, round_: Round) -> tuple[str, Callable[[], bool]]:
        """What to wait for before paging, in the page's own words: the alert it names firing,
        when Prometheus answers; else the incident's own check failing (the platform really is
        broken)."""
        alert = page_alert(round_.lab.page)
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
            return not self.engine.evaluate(round_.lab).passed

        return "the incident's own check failing", check_fails

    def await_symptom(
        self, round_: Round, bound_s: float, on_wait: Callable[[str, float], None] | None = None
    ) -> Round:
        """Wait (at most ``bound_s``) until the symptom the page names is observable; the round
        remembers whether it was, so the page can say "symptom not yet visible"."""
        what, observed = self.symptom_probe(round_)
        symptom = await_symptom(
            what,
            observed,
            bound_s,
            on_wait=None if on_wait is None else lambda seconds: on_wait(what, seconds),
        )
        round_ = Round(round_.lab, round_.started_at, symptom, paged_at=time.time())
        self._write(round_)
        return round_

    # ---- during the round ---------------------------------------------------------------------

    def page(self, round_: Round) -> dict[str, str]:
        """What the pager says, nothing more: the lab's [page] in a fixed order."""
        order = ("alert", "summary", "look", "complaint")
        page = round_.lab.page
        return {key: str(page[key]) for key in order if key in page}

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
        return self.engine.store.get(round_.lab.id).hints_used

    @learner_locked
    def hint(self) -> tuple[int, int, str]:
        round_ = self.require_current()
        tier, tiers, text = self.engine.hint(round_.lab)
        return tier, tiers, _LAB_COMMAND.sub(r"mlops-lab oncall \1", text)

    @learner_locked
    def check(
        self, wait_s: float = 0.0, on_pending: Callable | None = None, why: bool = False
    ) -> CheckReport:
        """The lab's own check; a pass ends the round (the caller reveals the lab). ``why``: the
        reasons behind each NO are shown, which counts as a hint."""
        round_ = self.require_current()
        report = self.engine.check(round_.lab, wait_s=wait_s, on_pending=on_pending, why=why)
        if report.passed:
            self._forget()
        return report

    @learner_locked
    def answer(self, answers: dict[str, str]) -> None:
        """Record what the learner found, for the round's lab (unnamed)."""
        self.engine.answer(self.require_current().lab, answers)

    @learner_locked
    def solve(self) -> Round:
        """Apply the reference fix: the round is assisted, not a mitigation of the learner's."""
        round_ = self.require_current()
        self.engine.solve(round_.lab)
        return round_

    def assisted(self, round_: Round) -> bool:
        return self.engine.store.get(round_.lab.id).assisted

    @learner_locked
    def giveup(self) -> Round:
        """End the round: the platform goes back to its golden state, the lab is revealed."""
        round_ = self.require_current()
        Engine(self.settings, console=self.console, on_call=True).reset(round_.lab)
        progress = self.engine.store.get(round_.lab.id)
        progress.event("gave up on call", seconds=round_.elapsed_s)
        self.engine.store.save(round_.lab.id, progress)
        self._forget()
        return round_

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
        state_file.write_json(self.path, document)

    @learner_locked
    def _forget(self) -> None:
        self.path.unlink(missing_ok=True)

"""On-call mode: a random unsolved incident, started without saying which lab it is.

The learner gets what an on-call engineer gets: the page (alert, summary, where to look, the
complaint), the time it started and where the platform's tools are. The lab's id, title and
README stay hidden until the check passes or the learner gives up. The round is written to
``<learner_home>/oncall.json`` so every `mlops-lab oncall ...` process finds it.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console

from mlops_lab.lab_engine.catalog import Lab, all_labs, find
from mlops_lab.lab_engine.engine import CheckReport, Engine
from mlops_lab.lab_engine.progress import IN_PROGRESS, SOLVED
from platform_core.errors import PlatformError
from platform_core.settings import Settings

ROUND_FILE = "oncall.json"
# The golden path is a question from the product team, not an incident to be paged for.
NOT_AN_INCIDENT = ("01",)
# Hints written for lab mode name the lab's own commands; on call they name the round's.
_LAB_COMMAND = re.compile(r"mlops-lab lab (check|hint) \d+")


@dataclass(frozen=True)
class Round:
    lab: Lab
    started_at: float

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started_at


class Oncall:
    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.path = settings.learner_home / ROUND_FILE
        # Labs announce themselves as they start ("Lab 05. Alert: ..."), and so do resets of
        # what they changed: on call that gives the incident away, so the engine talks to a
        # console nobody reads. Giving up reveals the lab, so it may use the real console.
        self.console = console or Console(stderr=True)
        self.engine = Engine(settings, console=Console(stderr=True, quiet=True))

    # ---- the round ----------------------------------------------------------------------------

    def current(self) -> Round | None:
        """The round in progress, or solved but not yet told to the learner; a round whose lab
        was reset some other way (`mlops-lab lab reset`) is over and forgotten."""
        if not self.path.exists():
            return None
        try:
            raw = json.loads(self.path.read_text())
            round_ = Round(find(raw["lab"]), float(raw["started_at"]))
        except (ValueError, KeyError, PlatformError):
            self._forget()
            return None
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
        progress = self.engine.store.load()
        return [
            lab
            for lab in all_labs()
            if lab.runs_on(self.engine.runtime)
            and lab.id not in NOT_AN_INCIDENT
            and (include_solved or lab.id not in progress or progress[lab.id].status != SOLVED)
        ]

    def start(self, include_solved: bool = False, rng: random.Random | None = None) -> Round:
        running = self.current()
        if running is not None:
            if self.engine.store.get(running.lab.id).status == IN_PROGRESS:
                since = time.strftime("%H:%M:%S", time.localtime(running.started_at))
                raise PlatformError(
                    f"An on-call round is already running (paged at {since}).",
                    hint="`mlops-lab oncall status` shows the page again; `mlops-lab oncall "
                    "check` when it is fixed; `mlops-lab oncall giveup` to end it.",
                )
            self._forget()  # solved through `mlops-lab lab check`: that round is over
        busy = self.engine.store.in_progress()
        if busy:
            raise PlatformError(
                f"Lab {busy[0]} is in progress; one incident at a time keeps the symptoms "
                "readable.",
                hint=f"Finish it (`mlops-lab lab check {busy[0]}`) or put the platform back with "
                f"`mlops-lab lab reset {busy[0]}`, then go on call.",
            )
        labs = self.eligible(include_solved)
        if not labs:
            raise PlatformError(
                f"You have solved every incident that runs on the {self.engine.runtime} runtime, "
                "so there is nothing left to page you with.",
                hint="Practise again with solved ones: `mlops-lab oncall start --include-solved`.",
            )
        lab = (rng or random.Random()).choice(labs)
        progress = self.engine.start(lab, mode="oncall")
        round_ = Round(lab, progress.started_at or time.time())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"lab": lab.id, "started_at": round_.started_at}))
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

    def hint(self) -> tuple[int, int, str]:
        round_ = self.require_current()
        tier, tiers, text = self.engine.hint(round_.lab)
        return tier, tiers, _LAB_COMMAND.sub(r"mlops-lab oncall \1", text)

    def check(self, wait_s: float = 0.0, on_pending: Callable | None = None) -> CheckReport:
        """The lab's own check; a pass ends the round (the caller reveals the lab)."""
        round_ = self.require_current()
        report = self.engine.check(round_.lab, wait_s=wait_s, on_pending=on_pending)
        if report.passed:
            self._forget()
        return report

    def giveup(self) -> Round:
        """End the round: the platform goes back to its golden state, the lab is revealed."""
        round_ = self.require_current()
        Engine(self.settings, console=self.console).reset(round_.lab)
        progress = self.engine.store.get(round_.lab.id)
        progress.event("gave up on call", seconds=round_.elapsed_s)
        self.engine.store.save(round_.lab.id, progress)
        self._forget()
        return round_

    def _forget(self) -> None:
        self.path.unlink(missing_ok=True)

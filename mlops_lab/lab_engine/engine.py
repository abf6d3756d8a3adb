"""Runs a lab's parts against the platform and keeps the learner's progress.

Every command goes through here, so the rules hold for every lab: one lab in progress at a time,
start only on a healthy platform, check read-only and polled for eventual state, hints in tiers
(why a condition fails is one of them), the reference fix marks the attempt assisted, debrief only
after a solve (or when asked to spoil), reset back to the golden state from anywhere. While an
on-call round runs, lab commands refuse alike for every lab, so none of them tells which it is.
Each command that changes the progress holds the learner's lock (:mod:`platform_core.locks`):
a second one waits, then sees what the first did (a lab started, so one more is refused).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import httpx
from rich.console import Console

from mlops_lab.lab_engine import golden
from mlops_lab.lab_engine.catalog import Lab, all_labs
from mlops_lab.lab_engine.kit import SEED, VARIANT, Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import (
    IN_PROGRESS,
    NOT_STARTED,
    SOLVED,
    LabProgress,
    ProgressStore,
)
from mlops_lab.runtime.current import is_kubernetes, runtime_for
from platform_core.errors import PlatformError
from platform_core.locks import learner_locked
from platform_core.settings import Settings

# In a lab's recorded state: the champion when it started, which its reset makes champion again.
GOLDEN_CHAMPION = "golden_champion"
# Seeds drawn when none is given: below this, so one is easy to read back and type.
_SEEDS = 100_000


def draw_seed() -> int:
    return secrets.randbelow(_SEEDS)


@dataclass(frozen=True)
class CheckReport:
    lab: Lab
    conditions: list[Condition]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.conditions) and all(c.passed for c in self.conditions)


# What listings show of a lab in an on-call round: its progress from before the round.
_SHOWN_FIELDS = (
    "status",
    "started_at",
    "solved_at",
    "hints_used",
    "attempts",
    "seconds_to_solve",
    "solves",
    "mode",
    "assisted",
)


class Engine:
    def __init__(
        self, settings: Settings, console: Console | None = None, on_call: bool = False
    ) -> None:
        self.settings = settings
        self.console = console or Console(stderr=True)
        self.store = ProgressStore(settings.learner_home)
        # Driven by the on-call round (`mlops-lab oncall ...`), which may act on its own lab.
        self.on_call = on_call

    @property
    def runtime(self) -> str:
        """The runtime the platform runs on, as labs name it ("kind" for any Kubernetes)."""
        return "kind" if is_kubernetes(self.settings) else "local"

    def context(self) -> LabContext:
        return LabContext(self.settings, self.console, runtime_for(self.settings, self.console))

    # ---- listing ------------------------------------------------------------------------------

    @staticmethod
    def shown(progress: LabProgress) -> LabProgress:
        """Progress as listings show it: a lab in an on-call round looks as it did before the
        round (the round's point is not knowing which lab it is)."""
        if progress.sealed:
            before = {k: v for k, v in progress.before_round.items() if k in _SHOWN_FIELDS}
            return LabProgress(**before)
        return progress

    def round_lab(self) -> str | None:
        """The id of the lab an on-call round runs, if one does."""
        return next((i for i, p in self.store.load().items() if p.sealed), None)

    def refuse_during_round(self) -> None:
        """The same refusal for every lab while a round runs: an answer that differed for the
        round's lab (a check that runs, a hint) would name it."""
        if not self.on_call and self.round_lab() is not None:
            raise PlatformError(
                "An on-call round is running, and `mlops-lab lab` commands would tell which "
                "incident it is.",
                hint="Work on it with `mlops-lab oncall status`, `hint`, `check` or `solve`; "
                "`mlops-lab oncall giveup` ends the round and puts the platform back.",
            )

    def listing(self) -> list[dict]:
        progress = {k: self.shown(v) for k, v in self.store.load().items()}
        return [
            {
                "id": lab.id,
                "slug": lab.slug,
                "title": lab.title,
                "runtime": lab.runtime,
                "difficulty": lab.difficulty,
                "minutes": lab.minutes,
                "variants": len(lab.variants),
                "status": progress.get(lab.id, LabProgress()).status,
            }
            for lab in all_labs()
        ]

    def status_rows(self) -> list[tuple[Lab, LabProgress]]:
        progress = {k: self.shown(v) for k, v in self.store.load().items()}
        return [(lab, progress.get(lab.id, LabProgress())) for lab in all_labs()]

    # ---- start --------------------------------------------------------------------------------

    @learner_locked
    def start(
        self, lab: Lab, mode: str = "lab", seed: int | None = None, alongside: str | None = None
    ) -> LabProgress:
        """Break the platform as the lab's incident did, in the variant ``seed`` draws (a seed
        drawn at random when none is given: a second attempt is a new incident). One lab at a
        time, but for an expert on-call round's second incident, started ``alongside`` its
        first."""
        self.refuse_during_round()
        self._require_runtime(lab)
        progress = self.store.get(lab.id)
        others = [i for i in self.store.in_progress() if i not in (lab.id, alongside)]
        if others:
            raise PlatformError(
                f"Lab {others[0]} is in progress; one lab at a time keeps the symptoms readable.",
                hint=f"Finish it (`mlops-lab lab check {others[0]}`) or put the platform back "
                f"with `mlops-lab lab reset {others[0]}`.",
            )
        ctx = self.context()
        golden.require_platform_up(ctx)
        if progress.status == IN_PROGRESS:
            ctx.say(f"Lab {lab.id} is already in progress: the platform stays as it is.")
            return progress
        if lab.monitoring and not ctx.runtime.monitoring_installed():
            raise PlatformError(
                f"Lab {lab.id} ({lab.title}) reads Prometheus and Alertmanager, and this "
                "cluster has none (kube-prometheus-stack is not installed). Nothing was changed.",
                hint="Install kube-prometheus-stack in the cluster, run the lab on kind "
                "(`make up RUNTIME=kind` installs it) or on the local runtime.",
            )
        golden.ensure_champion(ctx)
        before = ctx.require_champion()
        started_at = time.time()
        seed = draw_seed() if seed is None else seed
        number, variant = lab.variant(seed)
        state = (lab.module.start(ctx, variant) if variant else lab.module.start(ctx)) or {}
        state["started_at"] = started_at
        # The variant's number, never its parameters (they name the answer): the lab reads them
        # back with `kit.variant_of`.
        state[SEED], state[VARIANT] = seed, number
        state[GOLDEN_CHAMPION] = str(before.version)
        if lab.traffic:
            ctx.start_front_end()
        # The page goes out once the incident shows: a fix made at once then still leaves the
        # evidence its check keeps.
        on_record = getattr(lab.module, "await_evidence", None)
        if on_record is not None:
            on_record(ctx, state)
        shown_before = {k: v for k, v in asdict(progress).items() if k in _SHOWN_FIELDS}
        progress = LabProgress(
            status=IN_PROGRESS,
            started_at=started_at,
            mode=mode,
            state=state,
            solves=progress.solves,
            seconds_to_solve=progress.seconds_to_solve,
            assisted_solves=progress.assisted_solves,
            before_round=shown_before if mode == "oncall" else {},
            events=progress.events,
        )
        progress.event("started", mode=mode, seed=seed)
        self.store.save(lab.id, progress)
        return progress

    # ---- check --------------------------------------------------------------------------------

    @learner_locked
    def check(
        self,
        lab: Lab,
        wait_s: float = 0.0,
        on_pending: Callable | None = None,
        why: bool = False,
    ) -> CheckReport:
        """Evaluate the lab's conditions, again every few seconds until they pass or ``wait_s``
        runs out: a correct fix must not fail because a scrape or an alert has not caught up.

        Every condition's detail is in the report; the caller shows a failing one's only when
        asked (``why``), and then it counts as a hint."""
        self.refuse_during_round()
        self._require_runtime(lab)
        progress = self.store.get(lab.id)
        if progress.status == NOT_STARTED:
            raise PlatformError(
                f"Lab {lab.id} has not been started.", hint=f"`mlops-lab lab start {lab.id}`."
            )
        ctx = self.context()
        started = time.monotonic()
        while True:
            conditions = self._conditions(lab, ctx, progress)
            report = CheckReport(lab, conditions, time.monotonic() - started)
            if report.passed or report.seconds >= wait_s:
                break
            if on_pending is not None:
                on_pending(report)
            time.sleep(min(3.0, max(0.5, wait_s - report.seconds)))
        self._record_check(lab, report, why)
        return report

    def evaluate(self, lab: Lab) -> CheckReport:
        """The lab's conditions once, recorded nowhere (not an attempt): whether the incident
        is still there, for the on-call round to page only once it is."""
        started = time.monotonic()
        conditions = self._conditions(lab, self.context(), self.store.get(lab.id))
        return CheckReport(lab, conditions, time.monotonic() - started)

    def _conditions(self, lab: Lab, ctx: LabContext, progress: LabProgress) -> list[Condition]:
        try:
            return list(lab.module.check(ctx, progress))
        except PlatformError as error:
            return [Condition("platform answers", False, str(error))]
        except httpx.TransportError as error:
            # A service restarting: the check is not over, the platform is not answering yet.
            try:
                where = str(error.request.url)
            except RuntimeError:  # raised without a request
                where = "a service"
            return [
                Condition(
                    "platform answers",
                    False,
                    f"{where} does not answer ({str(error) or type(error).__name__}); "
                    "`mlops-lab status` shows which service is down",
                )
            ]

    def _record_check(self, lab: Lab, report: CheckReport, why: bool) -> None:
        progress = self.store.get(lab.id)
        if progress.status != IN_PROGRESS:
            return
        progress.attempts += 1
        failed = [c.name for c in report.conditions if not c.passed]
        progress.event("checked", passed=report.passed, failed=failed)
        if why and failed:
            # The reason behind a NO is a hint (it often names the fault), so it costs one.
            progress.hints_used += 1
            progress.event("hint", tier="why", conditions=failed)
        if report.passed:
            now = time.time()
            progress.status = SOLVED
            progress.solved_at = now
            progress.solves += 1
            progress.seconds_to_solve = now - (progress.started_at or now)
            if progress.assisted:
                progress.assisted_solves.append(now)
            progress.state["evidence"] = [
                {"name": c.name, "detail": c.detail} for c in report.conditions
            ]
            progress.event("solved", seconds=progress.seconds_to_solve, assisted=progress.assisted)
        self.store.save(lab.id, progress)

    # ---- hints, answers, debrief --------------------------------------------------------------

    @learner_locked
    def hint(self, lab: Lab) -> tuple[int, int, str]:
        """The next hint tier: (tier, of how many, text)."""
        self.refuse_during_round()
        self._require_runtime(lab)
        progress = self.store.get(lab.id)
        if progress.status == NOT_STARTED:
            raise PlatformError(f"Start lab {lab.id} first: `mlops-lab lab start {lab.id}`.")
        hints = list(lab.module.hints(self.context(), progress))
        tier = min(progress.hint_tier + 1, len(hints))
        if progress.status == IN_PROGRESS and progress.hint_tier < len(hints):
            progress.hint_tier = tier
            progress.hints_used += 1
            progress.event("hint", tier=tier)
            self.store.save(lab.id, progress)
        return tier, len(hints), hints[tier - 1]

    @learner_locked
    def answer(self, lab: Lab, answers: dict[str, str]) -> None:
        self.refuse_during_round()
        progress = self.store.get(lab.id)
        if progress.status != IN_PROGRESS:
            raise PlatformError(f"Lab {lab.id} is not in progress.")
        progress.answers.update(answers)
        progress.event("answered", keys=sorted(answers))
        self.store.save(lab.id, progress)

    def debrief(self, lab: Lab, spoil: bool = False) -> str:
        # As listings show it: refusing a lab solved before its on-call round would name it.
        if self.shown(self.store.get(lab.id)).status != SOLVED and not spoil:
            raise PlatformError(
                f"The debrief of lab {lab.id} gives the answer away, so it opens after a solve.",
                hint=f"`mlops-lab lab check {lab.id}` until it passes, or "
                f"`mlops-lab lab debrief {lab.id} --spoil`.",
            )
        state = self.store.get(lab.id).state
        return lab.debrief_text(variant_of(lab.variants, state))

    # ---- solve, reset -------------------------------------------------------------------------

    @learner_locked
    def solve(self, lab: Lab) -> None:
        """Apply the reference fix: the attempt is assisted from then on, and its solve says so
        in `lab status`, the postmortem and the portfolio."""
        self.refuse_during_round()
        self._require_runtime(lab)
        progress = self.store.get(lab.id)
        if progress.status != IN_PROGRESS:
            raise PlatformError(
                f"Lab {lab.id} is not in progress, so there is nothing to solve.",
                hint=f"`mlops-lab lab start {lab.id}` first.",
            )
        progress.assisted = True
        progress.event("reference fix applied")
        self.store.save(lab.id, progress)
        lab.module.solve(self.context(), progress)
        # A fix that reports the cause (`lab answer`) writes it into the same progress.
        self.store.save(lab.id, progress)

    @learner_locked
    def reset(self, lab: Lab) -> None:
        """Back to the golden state, whatever state the lab left the platform in."""
        self.refuse_during_round()
        self._require_runtime(lab)
        ctx = self.context()
        progress = self.store.get(lab.id)
        golden.settle_retrains(ctx)
        reset = getattr(lab.module, "reset", None)
        if reset is not None:
            reset(ctx, progress)
        golden.back_to_golden(ctx, progress.state.get(GOLDEN_CHAMPION))
        if progress.status == IN_PROGRESS:
            progress.status = NOT_STARTED
        progress.event("reset")
        self.store.save(lab.id, progress)

    def _require_runtime(self, lab: Lab) -> None:
        if not lab.runs_on(self.runtime):
            raise PlatformError(
                f"Lab {lab.id} ({lab.title}) needs the {lab.runtime} runtime; this platform runs "
                f"on the {self.runtime} runtime, so it is skipped here.",
                hint="Run it on a machine with Docker and kind: `make up RUNTIME=kind`.",
            )

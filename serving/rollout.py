"""The candidate beside the champion: following the ``candidate`` alias, and routing requests.

:class:`CandidateFollower` is the candidate half of :class:`serving.registry.ChampionWatcher`: on
the same thread and at the same poll, it reads the alias and the version's rollout tags
(:mod:`platform_core.rollout`), loads the version off the request path with the same loader and
smoke test as a champion, and publishes a :class:`LiveRollout` in one assignment. A request reads
it once, with the champion, and keeps that pair from validation to response.

A candidate that cannot be loaded must not become a rollout that only looks alive: a version the
platform refuses to load (:mod:`platform_core.model_trust`), or one declaring feature transforms
serving cannot apply (:mod:`serving.transforms`), ends the rollout at once, one that
fails otherwise after a second try at the next poll (a registry restart mid-download deserves
one). A change of the declared transforms of the candidate being tried is applied at the next
poll, as for the champion; one serving cannot apply is logged once and the candidate keeps what
it had. Ending it is a registry write (the alias goes, the reason is tagged on the version), so
``mlops-lab rollout status`` and every other replica see it; the champion answers everything
throughout.

Canary routing is sticky when the request names an applicant: a hash of the key and the
candidate's version, not Python's per-process ``hash``, so every replica and every restart sends
one applicant to the same version. A key in the canary at 10 % stays in it at 20 %.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from platform_core import rollout as state
from platform_core.model_trust import UntrustedModel
from platform_core.rollout import Plan
from platform_core.settings import Settings
from serving import transforms

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from serving.model import LoadedModel

log = logging.getLogger(__name__)

# Hash buckets of a canary share: a resolution of 0.01 %.
BUCKETS = 10_000
# Polls a candidate may fail to load (for a reason other than being refused) before its rollout
# is aborted.
LOAD_ATTEMPTS = 2


def sticky_bucket(version: str, key: str) -> int:
    """The bucket of ``key`` for ``version``'s rollout, the same in every process."""
    digest = hashlib.blake2b(f"{version}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class LiveRollout:
    """A loaded candidate and how it is tried."""

    candidate: LoadedModel
    plan: Plan

    @property
    def version(self) -> str:
        return self.candidate.version

    @property
    def shadow(self) -> bool:
        return self.plan.mode == state.SHADOW

    def answers(self, key: str | None, draw: Callable[[], float] = random.random) -> bool:
        """Whether the candidate answers this request: never in shadow; in a canary, for its
        share of the keys, or of the requests that send none."""
        if self.plan.mode != state.CANARY:
            return False
        if key is None:
            return draw() * 100 < self.plan.percent
        return sticky_bucket(self.version, key) < self.plan.percent * BUCKETS / 100


Loader = Callable[["MlflowClient", Settings, "ModelVersion"], "LoadedModel"]


class CandidateFollower:
    def __init__(
        self,
        settings: Settings,
        client: MlflowClient,
        load: Loader,
        on_loaded: Callable[[LoadedModel], None] = lambda _m: None,
        on_aborted: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.client = client
        self._load = load
        self._on_loaded = on_loaded
        self._on_aborted = on_aborted
        # Published: read by request handlers without a lock, replaced in one assignment.
        self.rollout: LiveRollout | None = None
        self._failures: tuple[str, int] = ("", 0)  # version, loads failed in a row
        self._ending: tuple[str, str] | None = None  # version, reason: an abort not yet recorded
        self._reported: set[tuple[str, str]] = set()
        self._refused_transforms: set[tuple[str, str]] = set()  # (version, tag), said once

    @property
    def alias(self) -> str:
        return f"{self.settings.model_name}@{self.settings.candidate_alias}"

    def loaded(self, version: str) -> LoadedModel | None:
        """The candidate model if it is ``version``: promoting it needs no second load."""
        live = self.rollout
        return live.candidate if live is not None and live.version == version else None

    def follow(self, version: ModelVersion | None, champion: LoadedModel | None) -> None:
        """Act on what the registry said the candidate is, after the champion was handled."""
        if version is None:
            self._stop("the candidate alias is gone")
            self._failures = ("", 0)
            self._ending = None
            return
        number = str(version.version)
        if self._ending is not None and self._ending[0] != number:
            self._ending = None  # the alias moved on: that rollout is over without our record
        if champion is not None and number == champion.version:
            # Promoted: the champion is this very model, and the alias is about to go.
            self._stop(f"v{number} is the champion now")
            return
        if self._ending is not None and self._ending[0] == number:
            self._abort(*self._ending)  # recording it failed last time; the alias is still there
            return
        plan, problem = state.plan_from_tags(dict(version.tags or {}))
        if problem is not None and (number, problem) not in self._reported:
            self._reported.add((number, problem))
            log.warning(
                "The rollout tags of %s v%s are not usable: %s.", self.alias, number, problem
            )
        live = self.rollout
        if live is not None and live.version == number:
            if live.plan != plan:
                was, live = live.plan, dataclasses.replace(live, plan=plan)
                self.rollout = live
                log.info(
                    "Rollout of v%s: now %s (was %s).", number, plan.describe(), was.describe()
                )
            self._follow_transforms(live, transforms.declared(version.tags))
            return
        if live is not None:
            self._stop(f"the candidate alias moved to v{number}")
        self._try_load(version, plan, champion)

    def _follow_transforms(self, live: LiveRollout, spec: str) -> None:
        """Apply a change of the candidate's declared transforms, or keep what it had."""
        refused = (live.version, spec) in self._refused_transforms
        if spec == live.candidate.transforms_spec or refused:
            return
        try:
            candidate = live.candidate.declaring(spec)
        except transforms.Unreadable as error:
            self._refused_transforms.add((live.version, spec))
            log.error(
                "Refusing the serving transforms the candidate %s declares: %s; still applying "
                "%s to it.",
                self.alias,
                error,
                transforms.describe(live.candidate.transforms),
            )
            return
        self.rollout = dataclasses.replace(live, candidate=candidate)
        log.info(
            "Rollout of v%s: the candidate now declares %s (was %s).",
            live.version,
            transforms.describe(candidate.transforms),
            transforms.describe(live.candidate.transforms),
        )

    def _try_load(self, version: ModelVersion, plan: Plan, champion: LoadedModel | None) -> None:
        number = str(version.version)
        try:
            loaded = self._load(self.client, self.settings, version)
        except UntrustedModel as refusal:
            self._abort(number, f"{refusal.message} {refusal.hint or ''}".strip())
            return
        except transforms.Unreadable as error:
            self._abort(number, str(error))
            return
        except Exception as error:  # a broken candidate must never take the service down
            failed = self._failures[1] + 1 if self._failures[0] == number else 1
            self._failures = (number, failed)
            if failed < LOAD_ATTEMPTS:
                log.error(
                    "Could not load the candidate %s (version %s); trying once more at the next "
                    "poll. The champion keeps answering everything. Cause: %s",
                    self.alias,
                    number,
                    error,
                    exc_info=True,
                )
                return
            self._abort(number, f"it failed to load {failed} times; the last error: {error}")
            return
        self._failures = ("", 0)
        self.rollout = LiveRollout(loaded, plan)
        self._on_loaded(loaded)
        beside = f"champion v{champion.version}" if champion is not None else "no champion yet"
        log.info(
            "Rollout: %s v%s (run %s) loaded and checked in %.1fs; %s beside %s.",
            self.settings.model_name,
            number,
            loaded.run_id,
            loaded.load_seconds,
            plan.describe(),
            beside,
        )

    def _abort(self, number: str, reason: str) -> None:
        """End the rollout in the registry, so every replica and `rollout status` know why."""
        self.rollout = None
        self._failures = ("", 0)
        try:
            ended = state.end(
                self.client,
                self.settings,
                number,
                state.ABORTED,
                by=f"serving on {socket.gethostname()}",
                reason=f"serving could not load it: {reason}",
            )
        except Exception as error:  # the registry went away mid-write: try again next poll
            if self._ending is None:
                log.error(
                    "Could not load the candidate %s v%s (%s), and could not record the rollout's "
                    "end in the registry (%s); retrying at each poll. The champion keeps "
                    "answering everything.",
                    self.alias,
                    number,
                    reason,
                    error,
                )
            self._ending = (number, reason)
            return
        self._ending = None
        if not ended:
            return  # another replica, or a command, ended it first
        self._on_aborted()
        log.error(
            "Aborted the rollout of %s v%s: serving could not load it: %s The candidate alias "
            "is removed and the champion keeps answering everything; `mlops-lab rollout status` "
            "shows the reason.",
            self.settings.model_name,
            number,
            reason,
        )

    def _stop(self, why: str) -> None:
        live = self.rollout
        if live is None:
            return
        self.rollout = None
        log.info("Rollout of v%s over (%s); the champion answers everything.", live.version, why)

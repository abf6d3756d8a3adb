"""Follows the champion alias (and a rollout's candidate) in the MLflow registry and hot-swaps
the served model.

A background thread asks the registry which version the alias points at every
``alias_poll_interval_s``. A new version is loaded and smoke-tested on that thread, off the
request path, and only then published by replacing one reference: a request reads
:attr:`ChampionWatcher.current` once and uses that model from validation to response, so a swap
never mixes two versions in one answer and never fails a request in flight.

If the registry cannot be reached the last good model keeps serving and readiness is unchanged:
an outage of MLflow must not become an outage of predictions. The state is visible as
``serving_registry_reachable`` and as one log line per change, not one per poll.

A version the platform does not trust (pickled, or holding a type outside its trust list: see
:mod:`platform_core.model_trust`) is refused with one error line and not retried while the alias
stays on it: the last good model keeps serving, and ``serving_model_refused`` names the version.
A version that fails to load for any other reason (its artifacts missing or broken) is retried
every poll, with one error line; meanwhile the last good model serves and
``serving_champion_load_failed`` names the version.

The same poll reads the tags of the version served: the feature transforms it declares
(:mod:`serving.transforms`) are applied from the next request after the tag changes, with no new
version and no restart. A declaration serving cannot apply is refused with one error line naming
the version and the tag: a served version keeps the transforms it had, a new one is not loaded
while its tag stays so, and ``serving_feature_transforms_invalid`` names the version.

The same poll reads the ``candidate`` alias, and :class:`serving.rollout.CandidateFollower` loads
and publishes the candidate of a rollout. Promoting the candidate moves the champion alias to a
version already loaded here: it is published as the champion without a second load.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from platform_core import contract
from platform_core import rollout as rollout_state
from platform_core.model_trust import UntrustedModel
from platform_core.settings import Settings
from serving import model as model_loading
from serving import transforms
from serving.model import LoadedModel
from serving.rollout import CandidateFollower, LiveRollout

log = logging.getLogger(__name__)

# What a dead or restarting MLflow looks like to its client (requests' errors are OSErrors).
_UNREACHABLE = (MlflowException, OSError)
_KNOWN_CAUSES = (
    "Connection refused",
    "Read timed out",
    "Connection reset by peer",
    "Name or service not known",
    "Temporary failure in name resolution",
)


def settle_heap() -> None:
    """Take what is alive after a model load out of the cyclic garbage collector's view.

    The worker holds about 270,000 long-lived objects (MLflow, scikit-learn, pandas, the model).
    Every full collection walked all of them: a 150 ms pause, with the GIL held, every few
    thousand requests, which was serving's p99 at 200 requests/s (`make bench`). Frozen objects
    are still freed when nothing refers to them; one collection first, so that no garbage of the
    load is frozen with them. Its pause happens here, once per swap, off the request path.
    """
    gc.collect()
    gc.freeze()


class ChampionWatcher:
    def __init__(
        self,
        settings: Settings,
        on_swap: Callable[[LoadedModel], None] = lambda _m: None,
        on_rollout_aborted: Callable[[], None] = lambda: None,
        on_candidate: Callable[[LoadedModel], None] = lambda _m: None,
    ) -> None:
        self.settings = settings
        self.client = contract.client_for(settings)
        self._on_swap = on_swap

        def candidate_loaded(model: LoadedModel) -> None:
            settle_heap()
            on_candidate(model)

        self.candidates = CandidateFollower(
            settings,
            self.client,
            model_loading.load,
            on_loaded=candidate_loaded,
            on_aborted=on_rollout_aborted,
        )
        # Published state: read by request handlers and /metrics without a lock; each
        # attribute is replaced in one assignment.
        self.current: LoadedModel | None = None
        self.registry_reachable: bool | None = None
        # The registry answered and no version holds the alias: there is nothing to load, so a
        # new serving process is as ready as it can be (a rollout need not wait for a model).
        self.nothing_to_serve = False
        # The version the alias points at that the platform refused to load, if it does.
        self.refused: str | None = None
        # The version whose declared transforms serving cannot apply, if the champion's are.
        self.transforms_invalid: str | None = None
        self._unreadable: tuple[str, str] | None = None  # (version, tag) refused, said once
        self.waiting_for = f"checking the registry at {settings.mlflow_url}"
        # The version the alias points at that failed to load (its artifacts missing or broken),
        # retried every poll until it loads or the alias moves.
        self.failed: str | None = None
        self._no_champion_logged = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    @property
    def alias(self) -> str:
        return f"{self.settings.model_name}@{self.settings.champion_alias}"

    @property
    def rollout(self) -> LiveRollout | None:
        """The loaded candidate of a rollout in progress, or None."""
        return self.candidates.rollout

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling. A load in progress is abandoned: the thread is a daemon, and shutdown
        has the prediction log to flush within supervisord's stop timeout."""
        self._stop.set()
        self._thread.join(timeout=1)

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # the watcher must outlive any surprise; it retries next poll
                log.exception("Unexpected error while polling %s; retrying.", self.alias)
            if self._stop.wait(self.settings.alias_poll_interval_s):
                return

    def poll(self) -> None:
        """One look at the aliases; loads and swaps what moved, the champion first."""
        try:
            version = contract.champion(self.client, self.settings)
            candidate = rollout_state.candidate(self.client, self.settings)
        except _UNREACHABLE as error:
            self._set_reachable(False, error)
            return
        self._set_reachable(True)
        self._follow_champion(version)
        self.candidates.follow(candidate, self.current)

    def _follow_champion(self, version: ModelVersion | None) -> None:
        self.nothing_to_serve = version is None and self.current is None
        if self.refused is not None and (version is None or version.version != self.refused):
            self.refused = None
        if self.failed is not None and (version is None or version.version != self.failed):
            self.failed = None
        if version is None:
            self._no_champion()
        elif version.version == self.refused:
            return  # what the artifact holds will not change: refusing it once is enough
        elif self.current is None or version.version != self.current.version:
            self._load(version)
        else:
            self._follow_transforms(self.current, transforms.declared(version.tags))

    def _follow_transforms(self, current: LoadedModel, spec: str) -> None:
        """Apply a change of the served version's declared transforms, or keep what it had."""
        if spec == current.transforms_spec:
            self._readable(current.version)
            return
        if self._unreadable == (current.version, spec):
            return  # said already; the tag has not changed since
        try:
            declaring = current.declaring(spec)
        except transforms.Unreadable as error:
            kept = transforms.describe(current.transforms)
            self._refuse_transforms(error, f"still applying {kept} to version {current.version}")
            return
        self._readable(current.version)
        self.current = declaring
        log.info(
            "Version %s of %s now declares the feature transforms %s (was %s): applied before "
            "the model from the next request.",
            current.version,
            self.settings.model_name,
            transforms.describe(declaring.transforms),
            transforms.describe(current.transforms),
        )

    def _refuse_transforms(self, error: transforms.Unreadable, keeps: str) -> None:
        self._unreadable = (error.version, error.spec)
        self.transforms_invalid = error.version
        log.error(
            "Refusing the serving transforms %s declares: %s; %s. Correct or remove the tag "
            "%s on the version; serving reads it again at every poll.",
            self.alias,
            error,
            keeps,
            transforms.TAG_SERVING_TRANSFORMS,
        )

    def _readable(self, version: str) -> None:
        if self.transforms_invalid is not None:
            log.info(
                "No declared serving transforms are refused any more: version %s is served as "
                "it declares.",
                version,
            )
        self.transforms_invalid = None
        self._unreadable = None

    def _load(self, version: ModelVersion) -> None:
        promoted = self.candidates.loaded(version.version)
        if promoted is not None:
            self._publish(promoted, "promoted from the rollout, already loaded")
            self._follow_transforms(promoted, transforms.declared(version.tags))
            return
        if self._unreadable == (version.version, transforms.declared(version.tags)):
            return  # said already; not retried until the tag or the alias changes
        try:
            loaded = model_loading.load(self.client, self.settings, version)
        except transforms.Unreadable as error:
            self._refuse_transforms(error, f"it is not loaded, and {self._keeps()}")
            self.waiting_for = f"{error}. Correct or remove the tag on the version."
            return
        except UntrustedModel as refusal:
            self.refused = version.version
            log.error(
                "%s %s points at it; %s, and will not retry until the alias moves. %s",
                refusal.message,
                self.alias,
                self._keeps(),
                refusal.hint,
            )
            self.waiting_for = f"{refusal.message} {refusal.hint}"
            return
        except Exception as error:  # a broken version must never take the service down
            if self.failed != version.version:
                self.failed = version.version
                log.error(
                    "Could not load %s (version %s); %s. Retrying every poll. Cause: %s",
                    self.alias,
                    version.version,
                    self._keeps(),
                    error,
                    exc_info=True,
                )
                self.waiting_for = f"version {version.version} of {self.alias} failed to load"
            return
        settle_heap()
        self._publish(loaded, f"loaded and checked in {loaded.load_seconds:.1f}s")

    def _publish(self, loaded: LoadedModel, how: str) -> None:
        previous = self.current
        self.current = loaded
        self._readable(loaded.version)
        self.failed = None
        self._no_champion_logged = False
        self._on_swap(loaded)
        was = f", was version {previous.version}" if previous else ""
        log.info(
            "Now serving %s version %s (run %s%s), applying %s; %s.",
            self.settings.model_name,
            loaded.version,
            loaded.run_id,
            was,
            _declared(loaded),
            how,
        )

    def _keeps(self) -> str:
        if self.current is None:
            return "nothing is served yet"
        return f"still serving version {self.current.version}"

    def _no_champion(self) -> None:
        if self.current is not None:
            # Deleting the alias is not a reason to stop answering: keep the last model.
            if not self._no_champion_logged:
                log.warning(
                    "The alias %s no longer exists; still serving version %s.",
                    self.alias,
                    self.current.version,
                )
                self._no_champion_logged = True
            return
        self.waiting_for = (
            f"no champion yet: no version of {self.settings.model_name!r} has the alias "
            f"{self.settings.champion_alias!r}. Train and promote one (`make train`); serving "
            "becomes ready by itself within one poll."
        )
        if not self._no_champion_logged:
            log.warning("Not ready: %s", self.waiting_for)
            self._no_champion_logged = True

    def _set_reachable(self, reachable: bool, error: BaseException | None = None) -> None:
        if reachable == self.registry_reachable:
            return
        first_check = self.registry_reachable is None
        self.registry_reachable = reachable
        if not reachable:
            self.nothing_to_serve = False  # unknown again: a champion may exist
        url = self.settings.mlflow_url
        if reachable:
            if not first_check:
                log.info("MLflow registry at %s is reachable.", url)
            return
        if self.current is None:
            self.waiting_for = f"waiting for MLflow at {url} (unreachable: {_short(error)})"
            log.warning(
                "Waiting for MLflow at %s: %s. Retrying every %.0fs.",
                url,
                _short(error),
                self.settings.alias_poll_interval_s,
            )
        else:
            log.warning(
                "MLflow registry at %s is unreachable (%s); still serving version %s.",
                url,
                _short(error),
                self.current.version,
            )


def _declared(model: LoadedModel) -> str:
    if not model.transforms:
        return "no feature transforms of its own"
    return f"the feature transforms it declares ({transforms.describe(model.transforms)})"


def _short(error: BaseException | None) -> str:
    """The useful part of a client error: MLflow wraps the cause in a long retry message."""
    text = str(error) if error is not None else ""
    for cause in _KNOWN_CAUSES:
        if cause.lower() in text.lower():
            return cause
    first_line = text.splitlines()[0] if text else type(error).__name__
    return first_line[:200]

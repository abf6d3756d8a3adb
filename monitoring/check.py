"""One drift check: the champion's reference sample against the newest window of the prediction log.

Both the drift monitor service (every ``drift_interval_s``) and ``mlops-lab drift check`` run
this. A check never raises for a condition a running platform can be in (no traffic yet, no
champion yet, MLflow restarting): it returns a :class:`CheckOutcome` whose status says why there
is no drift result, and the caller reports it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitoring.performance import Performance, measure
from monitoring.status import HEALTHY, Status
from platform_core import contract, prediction_log
from platform_core.contract import FeatureTypes
from platform_core.probe import MlflowUnavailable, require_mlflow
from platform_core.settings import Settings

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

    from monitoring.drift import DriftResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckOutcome:
    status: Status
    message: str
    model_version: str | None = None
    window_rows: int = 0
    drift: DriftResult | None = None
    performance: Performance | None = None
    duration_s: float = 0.0
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)
    # Whether MLflow answered during this check; None when the check failed before asking.
    registry_reachable: bool | None = None

    @property
    def healthy(self) -> bool:
        return self.status in HEALTHY

    def to_document(self) -> dict:
        """The outcome as JSON: the monitor's /status and `mlops-lab drift check --json`."""
        document = {
            "status": self.status.value,
            "message": self.message,
            "model_version": self.model_version,
            "window_rows": self.window_rows,
            "duration_s": round(self.duration_s, 3),
            "registry_reachable": self.registry_reachable,
        }
        if self.drift is not None:
            document["drifted_share"] = self.drift.drifted_share
            document["dataset_drifted"] = self.drift.dataset_drifted
            # JSON has no NaN: a feature without values on one side has no score.
            document["features"] = [
                {**{k: None if v != v else v for k, v in asdict(f).items()}, "drifted": f.drifted}
                for f in self.drift.features
            ]
        if self.performance is not None:
            document["performance"] = asdict(self.performance)
        return document


class CheckProblem(Exception):
    """A condition that ends a check early with a status other than ok."""

    def __init__(self, status: Status, message: str, model_version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.model_version = model_version


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    types: FeatureTypes
    reference: pd.DataFrame = field(repr=False)
    # False while MLflow cannot be asked: the last champion seen, which may have been replaced.
    confirmed: bool = True


class ChampionReference:
    """The champion's feature types and reference sample, reloaded only when the alias moves.

    With ``version``, that version's instead (a rollout candidate's, before it is promoted:
    whether the traffic it would answer looks like what it was trained on)."""

    def __init__(self, settings: Settings, version: str | None = None) -> None:
        self.settings = settings
        self.version = version
        self._cached: Champion | None = None

    def current(self) -> Champion:
        """The champion now; while MLflow is down, the last one seen (as serving keeps it)."""
        try:
            client, version = self._lookup()
            if self._cached is None or self._cached.version != version.version:
                self._cached = self._load(client, version)
                log.info(
                    "Loaded the reference sample of %s v%s (%d rows, %d features)",
                    self.settings.model_name,
                    version.version,
                    len(self._cached.reference),
                    len(self._cached.types.names),
                )
            return self._cached
        except CheckProblem as problem:
            if problem.status != Status.MLFLOW_UNREACHABLE or self._cached is None:
                raise
            log.warning(
                "%s Comparing with the cached reference of v%s meanwhile.",
                problem.message,
                self._cached.version,
            )
            return replace(self._cached, confirmed=False)

    def _lookup(self) -> tuple[MlflowClient, ModelVersion]:
        settings = self.settings
        _fail_if_mlflow_down(settings)
        client = contract.client_for(settings)
        try:
            if self.version is not None:
                return client, self._named(client)
            version = contract.champion(client, settings)
        # OSError covers the HTTP layer's connection errors (requests' exceptions derive from it).
        except (MlflowException, OSError) as error:
            raise CheckProblem(Status.MLFLOW_UNREACHABLE, _mlflow_down(settings, error)) from error
        if version is None:
            self._cached = None
            raise CheckProblem(
                Status.NO_CHAMPION,
                f"No model version of {settings.model_name!r} has the "
                f"{settings.champion_alias!r} alias yet: nothing to compare traffic with. "
                "Train one with `mlops-lab train`.",
            )
        return client, version

    def _named(self, client: MlflowClient) -> ModelVersion:
        name = self.settings.model_name
        try:
            return client.get_model_version(name, str(self.version))
        except MlflowException as error:
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        raise CheckProblem(
            Status.NO_CHAMPION,
            f"{name} has no version {self.version!r} in the registry: `mlops-lab model list` "
            "shows the versions there are.",
        )

    def _load(self, client: MlflowClient, version: ModelVersion) -> Champion:
        try:
            types = contract.load_feature_types(client, version)
            reference = contract.load_reference(client, version)
        except (MlflowException, OSError, ValueError, KeyError) as error:
            # A download can fail because MLflow just went away: that is not a lost artifact.
            _fail_if_mlflow_down(self.settings)
            raise CheckProblem(
                Status.REFERENCE_MISSING,
                f"{self.settings.model_name} v{version.version} has no usable reference sample "
                f"(runs:/{version.run_id}/{contract.REFERENCE_ARTIFACT} and "
                f"{contract.FEATURE_TYPES_ARTIFACT}): {_first_line(error)}. Drift cannot be "
                "measured for this version; train a new one with `mlops-lab train`.",
                version.version,
            ) from error
        # Its artifacts loaded, so it has a run (contract reads them from the version's run).
        return Champion(version.version, version.run_id or "", types, reference)


def _fail_if_mlflow_down(settings: Settings) -> None:
    """The floor's ``require_mlflow`` (fail fast with the URL: the MLflow client would otherwise
    retry for minutes), raised as a check problem so the monitor reports a status and retries
    instead of stopping."""
    try:
        require_mlflow(settings)
    except MlflowUnavailable as error:
        raise CheckProblem(
            Status.MLFLOW_UNREACHABLE,
            f"{error.message} Run `mlops-lab status`; the check is retried.",
        ) from error


def _mlflow_down(settings: Settings, error: BaseException | str) -> str:
    return (
        f"MLflow is not reachable at {settings.mlflow_url} ({_first_line(error)}). "
        "Run `mlops-lab status`; the check is retried."
    )


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


class DriftChecker:
    """Runs checks against one platform; keeps the champion's reference between checks."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, version: str | None = None
    ) -> None:
        self.settings = settings
        self.champion = ChampionReference(settings, version)
        self._engine = engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = prediction_log.connect(self.settings.prediction_log_db_url)
        return self._engine

    def check(self, window_rows: int | None = None, keep_snapshot: bool = False) -> CheckOutcome:
        started = time.perf_counter()
        try:
            outcome = self._check(window_rows or self.settings.drift_window_rows, keep_snapshot)
        except CheckProblem as problem:
            outcome = CheckOutcome(
                problem.status,
                problem.message,
                problem.model_version,
                registry_reachable=problem.status != Status.MLFLOW_UNREACHABLE,
            )
        except Exception as error:  # the monitor must survive anything one check runs into
            log.exception("Drift check failed unexpectedly")
            outcome = CheckOutcome(Status.ERROR, f"Unexpected error: {_first_line(error)}")
        return replace(outcome, duration_s=time.perf_counter() - started)

    def _check(self, window_rows: int, keep_snapshot: bool) -> CheckOutcome:
        settings = self.settings
        champion = self.champion.current()
        cached = (
            ""
            if champion.confirmed
            else f" (MLflow unreachable: compared with the cached reference of v{champion.version})"
        )
        window, labelled = self._read_window(window_rows)
        performance = measure(labelled, settings.performance_min_labels)
        min_rows = min(settings.drift_min_rows, window_rows)
        if len(window) < min_rows:
            return CheckOutcome(
                Status.NOT_ENOUGH_DATA,
                f"Only {len(window)} predictions of {settings.model_name} in the log; drift needs "
                f"at least {min_rows}. Send traffic (`mlops-lab traffic`).",
                champion.version,
                window_rows=len(window),
                performance=performance,
                registry_reachable=champion.confirmed,
            )
        # Imported only when there is something to compare: Evidently takes seconds to load,
        # and `mlops-lab drift check` should say "no champion yet" without that wait.
        from monitoring.drift import run_report

        drift, snapshot = run_report(
            champion.reference, window, champion.types, settings, with_report=keep_snapshot
        )
        drifted = drift.drifted_features
        summary = (
            f"{len(drifted)}/{len(drift.features)} features drifted"
            + (f" ({', '.join(drifted)})" if drifted else "")
            + f"; share {drift.drifted_share:.2f}, dataset drift "
            + ("YES" if drift.dataset_drifted else "no")
            + f"; {len(window)} rows vs {settings.model_name} v{champion.version} reference"
            + cached
        )
        return CheckOutcome(
            Status.OK,
            summary,
            champion.version,
            window_rows=len(window),
            drift=drift,
            performance=performance,
            snapshot=snapshot if keep_snapshot else None,
            registry_reachable=champion.confirmed,
        )

    def _read_window(self, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The newest ``rows`` predictions of this model, and its newest labelled ones (the log
        is shared: other models' rows are left out by the query, not after it)."""
        name = self.settings.model_name
        try:
            window = prediction_log.read_recent(self.engine, rows, model_name=name)
            labelled = prediction_log.read_recent(
                self.engine, rows, labelled_only=True, model_name=name
            )
        except SQLAlchemyError as error:
            raise CheckProblem(
                Status.PREDICTION_LOG_UNREACHABLE,
                f"Cannot read the prediction log at "
                f"{prediction_log.safe_url(self.settings.prediction_log_db_url)}: "
                f"{_first_line(error)}",
            ) from error
        return window, labelled

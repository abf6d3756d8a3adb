"""The ``rollout-decision`` flow: each check of the rollout in progress, and what it does.

``pipelines.runner`` serves it every ``rollout_check_interval_s``. A run first asks whether a
rollout is in progress at all (most find none, and end there); otherwise it takes the live
evidence (:mod:`platform_core.rollout_analysis`), decides by the rules
(:func:`pipelines.rollout_decision.decide`) and acts: promote through the gate's registry code,
abort, or extend, recording on the candidate what it decided and why each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger

from pipelines.rollout_decision import ABORT, PROMOTE, Decision, Rules, decide
from pipelines.termination import deliver_swallowed_stops
from platform_core import rollout as state
from platform_core.rollout_analysis import Analysis
from platform_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from platform_core.rollout import Rollout

# Who the registry says ended a rollout the flow decided.
BY = "rollout-decision flow"

# As in pipelines.flows: a stop that lands inside a callback still stops the run.
deliver_swallowed_stops()


@dataclass(frozen=True)
class Acted:
    """What :func:`act` did: ``promoted``, ``aborted``, ``extended``, or ``skipped`` when the
    rollout analysed is no longer the one in progress."""

    outcome: str
    version: str
    decision: Decision

    def summary(self) -> str:
        if self.outcome == "skipped":
            return f"v{self.version}: nothing done, its rollout is no longer the one in progress"
        return f"v{self.version} {self.outcome}: " + "; ".join(self.decision.reasons)


def act(
    client: MlflowClient, settings: Settings, rollout: Rollout, decision: Decision, by: str = BY
) -> Acted:
    """Carry out ``decision`` on ``rollout``: record it on the version (every time, so the last
    check shows in the registry), then promote through the gate's registry code, abort, or leave
    the rollout running.

    Nothing happens if the rollout changed since it was analysed (ended by hand, or a new one
    started): the evidence was about another rollout."""
    from pipelines import rollout as rollouts

    running = state.current(client, settings)
    if (
        running is None
        or running.version != rollout.version
        or running.started_at != rollout.started_at
    ):
        return Acted("skipped", rollout.version, decision)
    rollouts.record_check(client, settings, rollout.version, decision.action, decision.reasons)
    reason = f"{by}: " + "; ".join(decision.reasons)
    if decision.action == PROMOTE:
        rollouts.promote(client, settings, by=by, reason=reason)
        return Acted("promoted", rollout.version, decision)
    if decision.action == ABORT:
        rollouts.abort(client, settings, by=by, reason=reason)
        return Acted("aborted", rollout.version, decision)
    return Acted("extended", rollout.version, decision)


def analyse(settings: Settings, client: MlflowClient) -> Analysis | None:
    """The live evidence on the rollout in progress (:mod:`platform_core.rollout_analysis`)."""
    from platform_core import prediction_log, rollout_analysis

    engine = prediction_log.connect(settings.prediction_log_db_url)
    try:
        return rollout_analysis.analyse(settings, client, engine)
    finally:
        engine.dispose()


def candidate_alias_set(settings: Settings) -> bool | None:
    """Whether the candidate alias exists, asked over MLflow's REST API: most runs find no
    rollout, and importing MLflow's client would double their cost (about 3 s of CPU). None
    when the answer is unclear; the caller then asks through the client."""
    import httpx

    from platform_core import http_calls

    try:
        response = http_calls.get(
            f"{settings.mlflow_url}/api/2.0/mlflow/registered-models/alias",
            params={"name": settings.model_name, "alias": settings.candidate_alias},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    if response.status_code == 200:
        return True
    # No such model yet (404), or no such alias on it (400, as contract.version_by_alias reads).
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return False if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") else None


@flow(name="rollout-decision")
def rollout_decision() -> str:
    """While a rollout is in progress: weigh its live evidence against the ``rollout_*`` rules
    and promote the candidate, extend the rollout or abort it, recording why on the version.
    With none in progress it reads one alias and ends."""
    settings = get_settings()
    logger = get_run_logger()
    if candidate_alias_set(settings) is False:
        logger.info("No rollout of %s in progress: nothing to decide.", settings.model_name)
        return "no rollout in progress"
    from platform_core import contract, mlflow_client

    mlflow_client.apply(mlflow_client.PIPELINE)
    client = contract.client_for(settings)
    if state.current(client, settings) is None:
        logger.info("No rollout of %s in progress: nothing to decide.", settings.model_name)
        return "no rollout in progress"
    analysis = analyse(settings, client)
    if analysis is None:
        logger.info("The rollout ended before it was analysed: nothing to decide.")
        return "no rollout in progress"
    decision = decide(analysis, Rules.of(settings))
    acted = act(client, settings, analysis.rollout, decision)
    logger.info("%s", acted.summary())
    return acted.summary()

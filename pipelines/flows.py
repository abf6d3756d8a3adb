"""The Prefect flows: ``train`` and ``retrain`` (the third, ``rollout-decision``, lives in
:mod:`pipelines.rollout_check`).

Both run the same steps (:mod:`pipelines.tasks`): load -> validate -> split -> fit -> evaluate
-> register -> quality gate -> promote. They differ only in where the data comes from: ``train``
generates a scenario or reads a CSV; ``retrain`` takes the champion's reference sample plus
recent labelled traffic from the prediction log (the drift alert starts it). ``pipelines.runner``
serves both as deployments; ``mlops-lab train`` runs ``train`` in-process against the same
Prefect server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from pipelines.lineage import TAG_EVALUATED_ON, EvaluateOn
from pipelines.rollout_request import RolloutMode, rollout_plan
from pipelines.termination import deliver_swallowed_stops
from pipelines.transient import is_transient
from platform_core import contract, mlflow_client
from platform_core.probe import MlflowUnavailable
from platform_core.rollout import Plan
from platform_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from pipelines.sources import TrainingData

# A flow run's process is the one that imports this module to run a flow: a stop must stop it.
deliver_swallowed_stops()


def steps() -> ModuleType:
    """The flows' tasks, imported when a flow runs rather than with this module.

    The ``flows`` service imports this module only to serve the two deployments, and runs each
    flow run in a subprocess of its own: the training stack (scikit-learn, MLflow, pandas, about
    190 MiB resident and 2 s of imports) would sit idle in it for the platform's lifetime.
    """
    from pipelines import tasks

    return tasks


# Spelled out (not built from data.SCENARIOS) so the Prefect UI can offer a drop-down; a test
# keeps the two lists equal.
ScenarioName = Literal[
    "baseline",
    "covariate_shift",
    "concept_drift",
    "unit_bug",
    "missing_values",
    "new_category",
    "label_leak",
    "new_segment",
    "new_segment_young",
    "new_segment_retired",
    "concept_drift_rates",
    "concept_drift_age",
]


@dataclass(frozen=True)
class TrainOutcome:
    model_name: str
    version: str
    metrics: dict[str, float]
    promoted: bool
    reason: str
    # The champion the challenger was compared with (None for the first model).
    champion_before: str | None
    data_source: str
    rows: int
    mlflow_run_id: str
    mlflow_run_url: str
    flow_run_id: str | None
    # What the metrics and the gate were measured on: "holdout" (a random share of the training
    # data) or "recent" (the newest labelled traffic, held out).
    evaluated_on: str = "holdout"
    # With ``train --rollout``: the rollout started instead of a promotion ("shadow",
    # "canary 10%"); None when none was.
    rollout: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        m = self.metrics
        scores = f"AUC {m['auc']:.3f}, accuracy {m['accuracy']:.3f}, F1 {m['f1']:.3f}"
        if self.evaluated_on == "recent":
            scores += " on recent held-out traffic"
        if self.promoted:
            verdict = "promoted to champion"
        elif self.rollout:
            verdict = f"rollout started ({self.rollout}) beside champion v{self.champion_before}"
        else:
            verdict = "kept as challenger"
        return f"{self.model_name} v{self.version} ({scores}) {verdict}: {self.reason}"


def _train_and_gate(
    settings: Settings, loaded: TrainingData, seed: int, plan: Plan | None = None
) -> TrainOutcome:
    tasks = steps()
    valid = tasks.validate_data(loaded, settings.min_training_rows)
    parts = tasks.split_data(valid, seed)
    model = tasks.fit(parts, valid.types, seed)
    metrics = tasks.evaluate(model, parts)
    registered = tasks.register(settings, model, parts, valid, metrics, seed)
    decision = tasks.quality_gate(settings, registered.version, parts, valid.types, metrics["auc"])
    promotion = tasks.promote(settings, registered.version, decision, plan)
    outcome = TrainOutcome(
        model_name=settings.model_name,
        version=registered.version,
        metrics=metrics,
        promoted=promotion.promoted,
        reason=promotion.reason(decision.reason),
        champion_before=decision.champion_version,
        data_source=valid.source,
        rows=len(valid.frame),
        mlflow_run_id=registered.run_id,
        mlflow_run_url=registered.run_url,
        flow_run_id=flow_run.get_id(),
        evaluated_on=valid.lineage.get(TAG_EVALUATED_ON, "holdout"),
        rollout=promotion.rollout,
    )
    _publish(outcome)
    return outcome


def _publish(outcome: TrainOutcome) -> None:
    """A summary on the flow run's Artifacts tab, linking the Prefect run to the MLflow run."""
    m = outcome.metrics
    create_markdown_artifact(
        description=f"{outcome.model_name} v{outcome.version}",
        markdown="\n".join(
            [
                f"## {outcome.model_name} v{outcome.version}",
                "",
                "| held-out | value |",
                "|---|---|",
                *(f"| {name} | {value:.4f} |" for name, value in m.items()),
                "",
                f"**{_verdict(outcome)}**: {outcome.reason}",
                "",
                f"Data: `{outcome.data_source}` ({outcome.rows:,} rows). "
                f"MLflow run: {outcome.mlflow_run_url}",
            ]
        ),
    )


def _verdict(outcome: TrainOutcome) -> str:
    if outcome.promoted:
        return "Promoted to champion"
    return f"Rollout started ({outcome.rollout})" if outcome.rollout else "Kept as challenger"


def _guard_mlflow(settings: Settings, error: Exception) -> None:
    """After the tasks' own retries, a lost connection is reported as MLflow being down."""
    if is_transient(error):
        raise MlflowUnavailable(settings, f"still failing after retries: {error}") from error


@flow(name="train")
def train(
    scenario: ScenarioName = "baseline",
    data: str | None = None,
    target: str | None = None,
    rows: int | None = None,
    seed: int | None = None,
    model_name: str | None = None,
    rollout: RolloutMode | None = None,
    rollout_percent: float | None = None,
) -> TrainOutcome:
    """Train on a generated scenario (or on the CSV at ``data``, labelled by ``target``),
    register the model, and promote it if it passes the quality gate.

    ``model_name`` registers it under another model, in an experiment of the same name (a
    learner's CSV is not a version of the loan model). Default: the platform's model.

    ``rollout`` ("shadow", or "canary" answering ``rollout_percent`` % of requests, default 10)
    starts a rollout of a version that passes the gate instead of promoting it; the
    rollout-decision flow then promotes or aborts it on the live evidence."""
    plan = rollout_plan(rollout, rollout_percent)
    settings = get_settings()
    if model_name and model_name != settings.model_name:
        contract.check_model_name(model_name)
        settings = settings.model_copy(
            update={"model_name": model_name, "experiment_name": model_name}
        )
    mlflow_client.apply(mlflow_client.PIPELINE)
    seed = settings.random_seed if seed is None else seed
    tasks = steps()
    tasks.check_mlflow(settings)
    try:
        loaded = tasks.load(scenario, data, target, rows or settings.default_rows, seed)
        return _train_and_gate(settings, loaded, seed, plan)
    except Exception as error:
        _guard_mlflow(settings, error)
        raise


@flow(name="retrain")
def retrain(
    reason: str = "manual",
    traffic_rows: int | None = None,
    seed: int | None = None,
    recent_only: bool = False,
    evaluate_on: EvaluateOn = "holdout",
) -> TrainOutcome:
    """Retrain on the champion's reference sample plus recent labelled traffic (or, with
    ``recent_only``, on the recent labelled traffic alone); the new version goes through the same
    quality gate and is always registered (champion or challenger).

    ``evaluate_on="recent"`` judges it, and the champion, on the newest labelled traffic held out
    from training instead of a random share of its own rows: after a real population shift the
    question is which model serves the new applicants better."""
    settings = get_settings()
    mlflow_client.apply(mlflow_client.PIPELINE)
    seed = settings.random_seed if seed is None else seed
    tasks = steps()
    tasks.check_mlflow(settings)
    get_run_logger().info("Retraining because: %s", reason)
    try:
        rows = traffic_rows or settings.retrain_traffic_rows
        loaded = tasks.load_retraining_data(settings, rows, reason, recent_only, evaluate_on)
        return _train_and_gate(settings, loaded, seed)
    except Exception as error:
        _guard_mlflow(settings, error)
        raise

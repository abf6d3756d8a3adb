"""The steps of the training flows, each a Prefect task.

A task per step is what makes the Prefect UI useful: each shows its duration, its log lines
and, when a run fails, which step failed and why. Steps that talk to MLflow retry transient
failures (a dropped connection, a 5xx); anything else fails at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypedDict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.tasks import RetryConditionCallable
from sklearn.pipeline import Pipeline

from pipelines import gate, registry, sources, training
from pipelines.gate import GateDecision
from pipelines.lineage import EvaluateOn
from pipelines.sources import TrainingData
from pipelines.training import Split
from pipelines.transient import is_transient
from pipelines.validation import validate
from platform_core import contract
from platform_core import rollout as rollout_state
from platform_core.errors import PlatformError
from platform_core.probe import require_mlflow
from platform_core.rollout import Plan
from platform_core.settings import Settings


def _retry_if_transient(_task, _run: TaskRun, state: State) -> bool:
    error = state.data if isinstance(state.data, BaseException) else None
    return error is not None and is_transient(error)


# The options of ``@task`` that the steps share, typed as ``task`` takes them.
class PlainTaskOptions(TypedDict):
    cache_policy: CachePolicy


class MlflowTaskOptions(PlainTaskOptions):
    retries: int
    retry_delay_seconds: list[float]
    retry_condition_fn: RetryConditionCallable


# Caching would silently skip training on a re-run; DataFrames also make poor cache keys.
PLAIN_TASK_OPTIONS: PlainTaskOptions = {"cache_policy": NO_CACHE}
# Steps that talk to MLflow: two more attempts, only for errors worth retrying.
MLFLOW_TASK_OPTIONS: MlflowTaskOptions = {
    **PLAIN_TASK_OPTIONS,
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": _retry_if_transient,
}


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str
    run_url: str


@task(name="check-mlflow", retries=2, retry_delay_seconds=3, **PLAIN_TASK_OPTIONS)
def check_mlflow(settings: Settings) -> None:
    require_mlflow(settings)


@task(name="load", **PLAIN_TASK_OPTIONS)
def load(scenario: str, data: str | None, target: str | None, rows: int, seed: int) -> TrainingData:
    loaded = sources.load(scenario, data, target, rows, seed)
    get_run_logger().info("Loaded: %s", loaded.summary)
    return loaded


@task(name="load-retraining-data", **MLFLOW_TASK_OPTIONS)
def load_retraining_data(
    settings: Settings,
    traffic_rows: int,
    reason: str,
    recent_only: bool = False,
    evaluate_on: EvaluateOn = "holdout",
) -> TrainingData:
    logger = get_run_logger()
    client = contract.client_for(settings)
    current = contract.champion(client, settings)
    if current is None:
        raise PlatformError(
            f"Retraining starts from the champion's reference data, and {settings.model_name} "
            "has no champion yet.",
            hint="Train one first: `mlops-lab train`.",
        )
    types = contract.load_feature_types(client, current)
    reference = contract.load_reference(client, current)
    traffic = sources.labelled_traffic(
        settings.prediction_log_db_url, settings.model_name, traffic_rows, types
    )
    if traffic.frame.empty and not recent_only:
        logger.warning("Training on the reference sample alone: %s.", traffic.note)
    loaded = sources.for_retraining(
        reference, traffic, types, reason, recent_only, evaluate_on, str(current.version)
    )
    logger.info("Loaded: %s (champion v%s)", loaded.summary, current.version)
    return loaded


@task(name="validate", **PLAIN_TASK_OPTIONS)
def validate_data(loaded: TrainingData, min_rows: int) -> TrainingData:
    frame = validate(loaded.frame, loaded.types, min_rows, source=loaded.origin)
    holdout = loaded.holdout
    if holdout is not None:
        # Judged on these rows: both classes are needed for an AUC.
        holdout = validate(holdout, loaded.types, 1, source="recent held-out traffic")
    positives = float(frame[loaded.types.target].mean())
    get_run_logger().info(
        "Valid: %s rows, %s features, %.1f%% positive %r",
        f"{len(frame):,}",
        len(loaded.types.names),
        100 * positives,
        loaded.types.target,
    )
    return dataclasses.replace(loaded, frame=frame, holdout=holdout)


@task(name="split", **PLAIN_TASK_OPTIONS)
def split_data(loaded: TrainingData, seed: int) -> Split:
    if loaded.holdout is not None:
        parts = Split(
            contract.prepare_features(loaded.frame, loaded.types),
            contract.prepare_features(loaded.holdout, loaded.types),
            loaded.frame[loaded.types.target].astype(int),
            loaded.holdout[loaded.types.target].astype(int),
        )
        how = "the newest labelled traffic, kept out of training"
    else:
        parts = training.split(loaded.frame, loaded.types, seed)
        how = "a random share of the same data"
    get_run_logger().info(
        "Split: %s rows to train on, %s held out (%s)",
        f"{len(parts.X_train):,}",
        f"{len(parts.X_test):,}",
        how,
    )
    return parts


@task(name="fit", **PLAIN_TASK_OPTIONS)
def fit(parts: Split, types: contract.FeatureTypes, seed: int) -> Pipeline:
    model = training.build_pipeline(types, seed).fit(parts.X_train, parts.y_train)
    get_run_logger().info("Fitted %s", " -> ".join(type(step).__name__ for _, step in model.steps))
    return model


@task(name="evaluate", **PLAIN_TASK_OPTIONS)
def evaluate(model: Pipeline, parts: Split) -> dict[str, float]:
    metrics = training.evaluate(model, parts.X_test, parts.y_test)
    get_run_logger().info(
        "Held-out: AUC %.4f, accuracy %.4f, F1 %.4f",
        metrics["auc"],
        metrics["accuracy"],
        metrics["f1"],
    )
    return metrics


@task(name="register", **MLFLOW_TASK_OPTIONS)
def register(
    settings: Settings,
    model: Pipeline,
    parts: Split,
    loaded: TrainingData,
    metrics: dict[str, float],
    seed: int,
) -> Registered:
    """Log the run and register a version, as challenger until the gate has spoken.

    Retried on transient errors, and safe to: every step is idempotent within one flow run
    (:func:`training.log_and_register` finds what an earlier attempt registered; tags and
    aliases are set, not added).
    """
    reference = training.reference_sample(loaded.frame, settings.reference_rows, seed)
    dataset = training.training_dataset(loaded.frame, loaded.types, loaded.source, loaded.uri)
    tags = {
        contract.TAG_DATA_HASH: dataset.digest,
        contract.TAG_DATA_SOURCE: loaded.source,
        contract.TAG_CODE_VERSION: training.code_version(),
        **loaded.lineage,
    }
    # The key that makes a retry of this task reuse what an earlier attempt registered.
    if flow_run_id := flow_run.get_id():
        tags[contract.TAG_FLOW_RUN_ID] = flow_run_id
    version = training.log_and_register(
        settings,
        model,
        parts,
        loaded.types,
        metrics,
        reference,
        tags,
        run_name=flow_run.get_name() or None,
        dataset=dataset,
    )
    # Registered from the run log_and_register logged, so it always has one.
    run_id = version.run_id
    assert run_id is not None, f"{settings.model_name} v{version.version} has no run"
    client = contract.client_for(settings)
    client.log_param(run_id, "seed", seed)
    if url := flow_run.get_flow_run_ui_url():
        client.set_tag(run_id, "prefect.flow_run_url", url)
    registry.mark_challenger(client, settings, version.version)
    get_run_logger().info(
        "Registered %s v%s (run %s) with signature, reference sample (%s rows) and lineage tags",
        settings.model_name,
        version.version,
        run_id,
        f"{len(reference):,}",
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    return Registered(
        version=version.version,
        run_id=run_id,
        run_url=f"{settings.mlflow_url}/#/experiments/{experiment_id}/runs/{run_id}",
    )


@task(name="quality-gate", **MLFLOW_TASK_OPTIONS)
def quality_gate(
    settings: Settings, version: str, parts: Split, types: contract.FeatureTypes, auc: float
) -> GateDecision:
    client = contract.client_for(settings)
    current = contract.champion(client, settings)
    problems = _sanity_problems(settings, parts, types, auc)
    if problems:
        decision = gate.implausible(problems, current.version if current else None)
    elif current is None or current.version == version:
        decision = gate.decide(auc, settings.gate_min_auc, settings.gate_margin_auc)
    else:
        difference = gate.schema_difference(contract.load_feature_types(client, current), types)
        if difference:
            decision = gate.not_comparable(current.version, difference)
        else:
            champion_model = contract.load_sklearn_model(
                contract.model_uri(settings, version=current.version)
            )
            champion_auc = training.evaluate(champion_model, parts.X_test, parts.y_test)["auc"]
            decision = gate.decide(
                auc,
                settings.gate_min_auc,
                settings.gate_margin_auc,
                champion_version=current.version,
                champion_auc=champion_auc,
            )
    log = get_run_logger().info if decision.promote else get_run_logger().warning
    log("Gate %s v%s: %s", "passes" if decision.promote else "rejects", version, decision.reason)
    return decision


def _sanity_problems(
    settings: Settings, parts: Split, types: contract.FeatureTypes, auc: float
) -> list[str]:
    if not settings.gate_sanity_checks:
        get_run_logger().warning("The gate's sanity checks are off (MLOPS_LAB_GATE_SANITY_CHECKS).")
        return []
    held_out = parts.X_test.assign(**{types.target: parts.y_test.to_numpy()})
    return gate.sanity_problems(
        auc,
        gate.single_feature_aucs(held_out, types),
        settings.gate_max_auc,
        settings.gate_max_feature_auc,
    )


# What the gate's decision records when a pass led neither to a promotion nor to a rollout.
NOT_ROLLED_OUT = "passed, not rolled out"
CHAMPION_CHANGED = "passed, champion changed"


@dataclass(frozen=True)
class Promotion:
    """What came of the gate's decision: the version promoted, or a rollout of it started
    (``rollout``, the plan described), or neither; ``note`` adds to the gate's reason why a
    pass led to neither, and ``label`` is then the decision recorded."""

    promoted: bool
    rollout: str | None = None
    note: str | None = None
    label: str | None = None

    def reason(self, gate_reason: str) -> str:
        return f"{gate_reason}; {self.note}" if self.note else gate_reason


@task(name="promote", **MLFLOW_TASK_OPTIONS)
def promote(
    settings: Settings, version: str, decision: GateDecision, plan: Plan | None = None
) -> Promotion:
    """Promote a version that passed the gate, or with ``plan`` start a rollout of it instead
    (``train --rollout``): it is tried beside the champion, and the rollout-decision flow
    promotes or aborts it on the live evidence."""
    client = contract.client_for(settings)
    logger = get_run_logger()
    moved = _champion_moved(client, settings, version, decision) if decision.promote else None
    if moved is not None:
        promotion = moved
    elif decision.promote and plan is not None:
        promotion = _roll_out(client, settings, version, plan)
    else:
        promotion = Promotion(promoted=decision.promote)
    label = promotion.label
    if promotion.rollout:
        label = f"rollout started ({promotion.rollout})"
    registry.record_decision(
        client,
        settings,
        version,
        promotion.promoted,
        promotion.reason(decision.reason),
        decision.margin,
        decision=label,
    )
    if promotion.promoted:
        move = registry.promote(client, settings, version, by="quality gate")
        was = f"v{move.previous}" if move.previous else "no champion"
        logger.info("%s is now champion (was %s)", f"v{version}", was)
    elif promotion.rollout:
        logger.info(
            "v%s is the rollout candidate (%s); the champion is unchanged until the "
            "rollout-decision flow promotes it",
            version,
            promotion.rollout,
        )
    elif decision.promote:
        logger.warning("v%s passed the gate but was %s", version, promotion.note)
    else:
        logger.info(
            "v%s keeps the %r alias; the champion is unchanged", version, settings.challenger_alias
        )
    return promotion


def _champion_moved(
    client, settings: Settings, version: str, decision: GateDecision
) -> Promotion | None:
    """A pass is a comparison with the champion of the moment the gate read it. If a person
    promoted or rolled back while the gate scored (a retrain takes a minute), that comparison
    no longer holds: promoting on it would undo their decision, so the version stays
    challenger and a person decides. None: the champion is the one the gate compared with."""
    now = contract.champion(client, settings)
    current = str(now.version) if now is not None else None
    if current in (decision.champion_version, version):
        return None
    judged = f"v{decision.champion_version}" if decision.champion_version else "no champion"
    return Promotion(
        promoted=False,
        label=CHAMPION_CHANGED,
        note=(
            f"not promoted: the champion changed from {judged} to "
            f"{f'v{current}' if current else 'none'} while the gate ran (someone promoted or "
            f"rolled back), so the comparison no longer holds; v{version} stays "
            f"{settings.challenger_alias}, and a person decides: compare it with "
            f"`mlops-lab model list`, then `mlops-lab model promote {version}` or nothing"
        ),
    )


def _roll_out(client, settings: Settings, version: str, plan: Plan) -> Promotion:
    """Start a rollout of ``version`` (which passed the gate), or say why not."""
    from pipelines import rollout

    champion = contract.champion(client, settings)
    if champion is None or str(champion.version) == version:
        return Promotion(
            promoted=True, note="promoted directly: there is no champion to try it beside"
        )
    running = rollout_state.current(client, settings)
    if running is not None and running.version != version:
        how = "--shadow" if plan.mode == rollout_state.SHADOW else f"--canary {plan.percent:g}"
        return Promotion(
            promoted=False,
            label=NOT_ROLLED_OUT,
            note=(
                f"not rolled out: v{running.version} is being rolled out "
                f"({running.plan.describe()}) and there is one candidate at a time, so "
                f"v{version} stays {settings.challenger_alias}; once that rollout ends, "
                f"`mlops-lab rollout start {version} {how}`"
            ),
        )
    rollout.start(client, settings, version, plan, by="quality gate")
    return Promotion(promoted=False, rollout=plan.describe())

"""Lab 04: the gate is loosened in the flows service's configuration, and a nightly training run
on leaky data promotes a model that is too good to be true."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from mlops_lab.lab_engine.golden import live_performance_recovered, served_version
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import http_calls

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

SERVICE = "flows"
LOOSENED = {"MLOPS_LAB_GATE_SANITY_CHECKS": "false", "MLOPS_LAB_GATE_MARGIN_AUC": "-1.0"}


def start(ctx: LabContext) -> dict:
    from prefect.deployments import run_deployment

    previous = ctx.champion()
    ctx.override(SERVICE, LOOSENED)
    # Last night's scheduled run, through the deployment the flows service serves. Prefect types
    # it as maybe a coroutine (its sync/async dispatch); called from sync code it is a FlowRun.
    run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
        "train/train",
        parameters={"scenario": "label_leak", "rows": ctx.settings.default_rows},
        timeout=600,
    )
    if not run.state or not run.state.is_completed():
        raise RuntimeError(f"the nightly training run did not complete: {run.state}")
    leaky = ctx.champion()
    if leaky is None or previous is None or leaky.version == previous.version:
        raise RuntimeError("the nightly run did not become champion; the lab cannot start")
    from mlops_lab.lab_engine.golden import wait_until_served

    wait_until_served(ctx, str(leaky.version))
    ctx.say(
        "[bold]Lab 04.[/] Last night's training run promoted a new champion. Risk team: \"it "
        'reports an offline AUC of 0.99; live, it approves people who then default."'
    )
    return {"previous": str(previous.version), "leaky": str(leaky.version)}


def running_gate(ctx: LabContext) -> dict | None:
    """The gate the flows service runs with, from its /health."""
    try:
        body = http_calls.get(
            ctx.settings.url(ctx.settings.flows_port, "/health"), timeout=5
        ).json()
    except (httpx.HTTPError, ValueError):
        return None
    return body.get("gate")


def unsound(gate: dict) -> list[str]:
    problems = []
    if not gate.get("sanity_checks"):
        problems.append("sanity checks are off")
    if gate.get("margin_auc", 0) < 0:
        problems.append(f"the margin is negative ({gate['margin_auc']}): worse models win")
    if gate.get("min_auc", 0) < 0.6:
        problems.append(f"the floor {gate['min_auc']} accepts near-random models")
    if gate.get("max_auc", 1) > 0.99 or gate.get("max_feature_auc", 1) > 0.99:
        problems.append("the plausibility ceilings are above 0.99")
    return problems


def reevaluate(ctx: LabContext, version: str, gate: dict) -> list[str]:
    """What the running gate says about a version, from its recorded held-out AUC and its
    training sample (read-only)."""
    from pipelines import gate as quality_gate
    from platform_core import contract

    model_version = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
    auc = float(model_version.tags.get("test_auc", "nan"))
    types = contract.load_feature_types(ctx.mlflow, model_version)
    reference = contract.load_reference(ctx.mlflow, model_version)
    return quality_gate.sanity_problems(
        auc,
        quality_gate.single_feature_aucs(reference, types),
        gate["max_auc"],
        gate["max_feature_auc"],
    )


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    leaky = progress.state["leaky"]
    versions = {str(v.version) for v in ctx.versions()}
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    gate = running_gate(ctx)
    problems = unsound(gate) if gate else ["the flows service does not answer /health"]
    verdict = reevaluate(ctx, leaky, gate) if gate and leaky in versions else []
    served = served_version(ctx)
    fit = _fit_to_serve(ctx, current, progress.state["previous"], gate) if gate else None
    return [
        Condition.of(
            "last night's model is still in the registry",
            leaky in versions,
            f"v{leaky} is kept as evidence",
            f"v{leaky} was deleted: the evidence of how it got through is gone",
        ),
        Condition.of(
            "the training service runs with a sound gate",
            not problems,
            "the flows service's gate: sanity checks on, margin and ceilings sound",
            "the flows service's gate: " + "; ".join(problems),
        ),
        Condition.of(
            "the champion is not last night's model",
            current is not None and current != leaky,
            f"v{current} is champion",
            f"v{leaky} is still champion" if current == leaky else "there is no champion",
        ),
        Condition.of(
            "the champion is fit to serve",
            current is not None and fit is not None and not fit,
            f"v{current} is the champion from before last night"
            if current == progress.state["previous"]
            else f"v{current} passes the running gate's floor and sanity checks",
            f"v{current}: " + "; ".join(fit)
            if fit
            else "cannot tell without a champion and the flows service's gate",
        ),
        live_performance_recovered(ctx, champion, progress.require_started_at()),
        Condition.of(
            "serving answers with the champion",
            current is not None and served == current,
            f"/predict answers with v{served}",
            f"/predict answers with {('v' + served) if served else 'an error'}",
        ),
        Condition.of(
            "the gate rejects last night's model",
            bool(verdict),
            f"re-evaluated, v{leaky} is refused: {'; '.join(verdict)}",
            f"sent through the running gate again, v{leaky} would pass its sanity checks",
        ),
    ]


def _fit_to_serve(ctx: LabContext, current: str | None, previous: str, gate: dict) -> list[str]:
    """Why the champion should not serve (empty when it may): the champion from before last
    night may, and so may any version the running gate's floor and sanity checks accept. An
    arbitrary older version promoted by hand is judged like any other."""
    if current is None:
        return ["there is no champion"]
    if current == previous:
        return []
    version = ctx.mlflow.get_model_version(ctx.settings.model_name, current)
    auc = float((version.tags or {}).get("test_auc", "nan"))
    floor = gate.get("min_auc", 0)
    problems = [] if auc >= floor else [f"held-out AUC {auc:.3f} is under the floor {floor}"]
    return problems + reevaluate(ctx, current, gate)


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    gate = running_gate(ctx) or {}
    return [
        "Two questions: why is this model so good offline and so bad live, and why did the "
        "gate let it through? `mlops-lab model list --json` shows each version's gate reason.",
        "Compare the new champion's training data with the previous one's (MLflow: the run's "
        "reference sample). Does any single feature predict the outcome almost perfectly?",
        f"The flows service reports the gate it runs with on its /health: {gate}. Who changed "
        f"it? A service also reads its own configuration file under "
        f"{ctx.settings.home / 'config'}.",
        "Restore the gate's configuration and restart the service (`mlops-lab restart flows`), "
        "then put the previous champion back (`mlops-lab model rollback`).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from pipelines import registry

    ctx.clear_overrides()
    champion = ctx.champion()
    if champion is not None and str(champion.version) == progress.state["leaky"]:
        registry.rollback(ctx.mlflow, ctx.settings)

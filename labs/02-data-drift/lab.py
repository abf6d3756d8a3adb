"""Lab 02: the front end starts sending annual_income in thousands of dollars."""

from __future__ import annotations

from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import contract

FEATURE = "annual_income"
# Dollars: any plausible yearly income is far above this; thousands of dollars are far below.
DOLLARS_FLOOR = 5_000.0
MIN_EVIDENCE = 50
DRIFTED = f'drift_feature_drifted{{feature="{FEATURE}"}}'


def start(ctx: LabContext) -> dict:
    ctx.set_front_end(income_unit="thousands")
    champion = ctx.require_champion()
    ctx.say(
        '[bold]Lab 02.[/] Prometheus: FeatureDriftDetected. Risk team: "since this morning the '
        'model flags far more applicants as likely to default, and nobody released a model."'
    )
    return {"champion": str(champion.version)}


def _feature(status: dict) -> dict | None:
    return next((f for f in status.get("features", []) if f["feature"] == FEATURE), None)


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    buggy = _buggy_rows(ctx, since)
    status = ctx.drift_status()
    feature = _feature(status)
    champion = ctx.champion()
    drift_ok = (
        status.get("status") == "ok"
        and champion is not None
        and status.get("model_version") == str(champion.version)
        and feature is not None
        and not feature["drifted"]
    )
    firing = ctx.firing("FeatureDriftDetected", feature=FEATURE)
    reference_median = None
    if champion is not None:
        reference = contract.load_reference(ctx.mlflow, champion)
        reference_median = float(reference[FEATURE].median())
    sound = reference_median is not None and reference_median >= DOLLARS_FLOOR
    return [
        Condition.of(
            "the drift monitor caught the incident",
            ctx.recorded_since(DRIFTED, since),
            f"Prometheus recorded {FEATURE} drifting after the lab started",
            f"Prometheus has no record of {FEATURE} drifting since the lab started (the drift "
            "monitor needs a window of the incident's traffic; a wiped history loses it)",
        ),
        Condition.of(
            "the incident's requests are still in the prediction log",
            buggy >= MIN_EVIDENCE,
            f"{buggy} logged applications with {FEATURE} in thousands remain as evidence",
            f"only {buggy} logged applications from the incident remain: the evidence is gone "
            "(a wiped prediction log cannot show what happened)",
        ),
        Condition.of(
            f"recent traffic's {FEATURE} looks like the training data again",
            drift_ok,
            f"the drift monitor's latest window: {FEATURE} not drifted",
            _drift_detail(status, feature),
        ),
        Condition.of(
            "the drift alert has resolved",
            not firing,
            f"FeatureDriftDetected for {FEATURE} is not firing",
            f"FeatureDriftDetected for {FEATURE} still fires (it resolves one evaluation after "
            "the window is clean)",
        ),
        Condition.of(
            "the champion was trained on sound data",
            sound,
            f"the champion's training sample has a median {FEATURE} of {reference_median:,.0f}"
            if sound
            else "",
            "the champion's training sample has a median "
            f"{FEATURE} of {reference_median or 0:,.0f}: it was trained on the buggy values",
        ),
    ]


def _drift_detail(status: dict, feature: dict | None) -> str:
    if status.get("status") != "ok":
        return f"the drift monitor reports {status.get('status')}: {status.get('message')}"
    if feature is None:
        return f"the drift monitor's latest check has no {FEATURE}"
    return (
        f"{FEATURE} still drifts in the newest {status.get('window_rows')} predictions "
        f"({feature.get('method')} {feature.get('score') or 0:.2f} >= {feature.get('threshold')})"
    )


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    recent = ctx.logged(progress.require_started_at())
    now = float(recent[FEATURE].tail(200).median()) if FEATURE in recent else float("nan")
    champion = ctx.require_champion()
    before = float(contract.load_reference(ctx.mlflow, champion)[FEATURE].median())
    return [
        "Which alert fired, and for which feature? Prometheus's Alerts page, or "
        "`mlops-lab drift check` for the whole table.",
        f"Recent traffic's median {FEATURE} is {now:,.2f}; the champion's training data has "
        f"{before:,.0f}. Is that a different population, or the same one written differently?",
        "The model did not change; what it receives did. These applications come from the loan "
        f"front end: `mlops-lab logs front-end` and its configuration, {ctx.front_end_path}.",
        f"Put `income_unit` back to `dollars` in {ctx.front_end_path}; the drift window then "
        "refills with good rows within a minute or two.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    # A learner fixes it minutes in; the reference fix waits until the incident is on record.
    since = progress.require_started_at()
    ctx.wait_until(
        lambda: _buggy_rows(ctx, since) >= MIN_EVIDENCE and ctx.recorded_since(DRIFTED, since),
        120,
        "the incident's requests in the prediction log and its drift in Prometheus",
    )
    ctx.set_front_end(income_unit="dollars")


def _buggy_rows(ctx: LabContext, since: float) -> int:
    logged = ctx.logged(since)
    return int((logged[FEATURE] < DOLLARS_FLOOR).sum()) if FEATURE in logged else 0

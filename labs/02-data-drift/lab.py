"""Lab 02: the front end starts sending one feature in the wrong unit (the first variant:
annual_income in thousands of dollars).

The variants vary the feature and the unit, among mistakes a client really makes and whose drift
the monitor flags on that one feature while the model, reading the wrong number, flags about
twice as many applicants: each moves the feature's median by a round factor (1000, 12), not its
shape. None of them moves the share of drifted features or live AUC enough to start a retrain:
a percentage sent for a ratio would (every applicant scored as a certain default), and would
make this a different incident.
"""

from __future__ import annotations

from mlops_lab.front_end.config import Units
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import contract

# The feature sent in the wrong unit, that unit and the right one (as the front end's `units`
# name them), and what the debrief says of it. ``floor``: no value in the right unit is below it
# (yearly incomes in dollars start at 12,000, loan terms at 12 months), and (nearly) every value
# in the wrong unit is: incomes in thousands end at 400, terms in years at 7; a month's income is
# under 10,000 for all but the top 7 % of earners.
VARIANTS = (
    {
        "feature": "annual_income",
        "unit": "thousands",
        "right_unit": "dollars",
        "sent_as": "in thousands of dollars",
        "factor": "1000",
        "floor": 5000,
        "reads_as": "The model reads every applicant as earning about a thousandth of what they "
        "do, far below the poorest applicant it was trained on; a smaller income means a heavier "
        "loan burden.",
    },
    {
        "feature": "loan_term_months",
        "unit": "years",
        "right_unit": "months",
        "sent_as": "in years",
        "factor": "12",
        "floor": 12,
        "reads_as": "The model reads a 36-month loan as a 3-month one, shorter than any it was "
        "trained on; a shorter term means heavier monthly payments.",
    },
    {
        "feature": "annual_income",
        "unit": "monthly",
        "right_unit": "dollars",
        "sent_as": "as dollars a month",
        "factor": "12",
        "floor": 10000,
        "reads_as": "The model reads a month's pay as a year's: every applicant earns a twelfth "
        "of what they do, below nearly every applicant it was trained on; a smaller income means "
        "a heavier loan burden.",
    },
)
# The incident's first applications, kept as evidence: the page goes out once they are logged.
MIN_EVIDENCE = 20


def start(ctx: LabContext, variant: dict) -> dict:
    _send(ctx, variant["feature"], variant["unit"])
    champion = ctx.require_champion()
    ctx.say(
        '[bold]Lab 02.[/] Prometheus: FeatureDriftDetected. Risk team: "since this morning the '
        'model flags far more applicants as likely to default, and nobody released a model."'
    )
    return {"champion": str(champion.version)}


def _send(ctx: LabContext, feature: str, unit: str) -> None:
    """The front end sends ``feature`` in ``unit`` from now on, its other units as they were."""
    units = Units.model_validate({**ctx.front_end().units.model_dump(), feature: unit})
    ctx.set_front_end(units=units)


def await_evidence(ctx: LabContext, state: dict) -> None:
    variant = variant_of(VARIANTS, state)
    since = state["started_at"]
    ctx.wait_until(
        lambda: _buggy_rows(ctx, variant, since) >= MIN_EVIDENCE,
        120,
        f"the front end's first applications with {variant['feature']} {variant['sent_as']}",
    )


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    variant = variant_of(VARIANTS, progress.state)
    feature, sent_as = variant["feature"], variant["sent_as"]
    since = progress.require_started_at()
    logged = ctx.logged(since)
    buggy = len(_bad(logged, variant))
    champion = ctx.champion()
    reference_median = None
    learned = 0  # rows of the champion's training sample in the wrong unit
    clean = None
    drift = None
    needed = ctx.settings.drift_min_rows
    if champion is not None:
        reference = contract.load_reference(ctx.mlflow, champion)
        reference_median = float(reference[feature].median())
        learned = len(_bad(reference, variant))
        clean = _since_last_bad(logged, variant)
        if len(clean) >= needed:
            drift = _drift(ctx, champion, reference, clean, feature)
    status = ctx.drift_status()
    raised = _raised_thresholds(ctx, status)
    # Not one row in the wrong unit: a retrain on the incident's traffic (started by hand, or by
    # an alert) learns from it (its reference sample then holds some), and sound traffic looks
    # drifted to it.
    sound = reference_median is not None and learned == 0
    return [
        Condition.of(
            "the incident's requests are still in the prediction log",
            buggy >= MIN_EVIDENCE,
            f"{buggy} logged applications from the incident remain as evidence",
            f"only {buggy} logged applications from the incident remain: the evidence is gone "
            "(a wiped prediction log cannot show what happened)",
        ),
        Condition.of(
            "traffic since the last bad row looks like the training data",
            drift is not None and not drift.drifted,
            f"{0 if clean is None else len(clean)} applications since the last one with "
            f"{feature} {sent_as}; {feature} does not drift from the champion's training sample "
            "(the platform's threshold). The monitor's alert resolves once its window holds none "
            "of the incident's rows.",
            _waiting_detail(ctx, variant, clean, needed, drift),
        ),
        Condition.of(
            "the drift monitor judges with the platform's thresholds",
            status.get("status") == "ok" and not raised,
            "the drift monitor's thresholds are the platform's settings",
            f"the drift monitor reports {status.get('status')}: {status.get('message')}"
            if status.get("status") != "ok"
            else "the drift monitor's thresholds differ from the platform's: " + "; ".join(raised),
        ),
        Condition.of(
            "the champion was trained on sound data",
            sound,
            f"the champion's training sample has a median {feature} of {_number(reference_median)}"
            if reference_median is not None
            else "",
            f"{learned} rows of the champion's training sample have {feature} {sent_as}: it "
            "learned from the incident's traffic"
            if reference_median is not None
            else "there is no champion",
        ),
    ]


def _bad(logged, variant: dict):
    """Positions (oldest first) of the logged applications with the feature in the wrong unit:
    below the variant's floor, which no value in the right unit is."""
    feature = variant["feature"]
    if feature not in logged:
        return []
    return (logged[feature] < variant["floor"]).to_numpy().nonzero()[0]


def _since_last_bad(logged, variant: dict):
    """The applications after the last one in the wrong unit (all of them while there was none)."""
    bad = _bad(logged, variant)
    return logged.iloc[int(bad[-1]) + 1 :] if len(bad) else logged


def _drift(ctx: LabContext, champion, reference, frame, feature: str):
    """The feature's drift in ``frame`` against the champion's training sample, judged here with
    the platform's own thresholds (a threshold raised in the monitor's configuration does not
    change this verdict)."""
    from monitoring.drift import compute_drift

    types = contract.load_feature_types(ctx.mlflow, champion)
    window = frame.tail(ctx.settings.drift_window_rows).reindex(columns=types.names)
    result = compute_drift(reference, window, types, ctx.settings)
    return next(f for f in result.features if f.feature == feature)


def _raised_thresholds(ctx: LabContext, status: dict) -> list[str]:
    expected = {
        "numeric": ctx.settings.drift_numeric_threshold,
        "categorical": ctx.settings.drift_categorical_threshold,
    }
    raised = []
    for feature in status.get("features", []):
        want = expected.get(str(feature.get("kind")))
        have = feature.get("threshold")
        if want is not None and have is not None and abs(float(have) - want) > 1e-9:
            raised.append(f"{feature['feature']}: {have} (the platform's: {want})")
    return raised


def _waiting_detail(ctx: LabContext, variant: dict, clean, needed: int, drift) -> str:
    feature, sent_as = variant["feature"], variant["sent_as"]
    if clean is None:
        return "there is no champion to compare with"
    if drift is not None:
        return (
            f"{feature} drifts in the {len(clean)} applications since the last one with "
            f"{feature} {sent_as} ({drift.method} {drift.score:.2f} >= {drift.threshold})"
        )
    rate = ctx.settings.front_end_rate_per_s
    return (
        f"{len(clean)} applications since the last one with {feature} {sent_as}; {needed} are "
        f"needed to judge (about {max(0.0, (needed - len(clean)) / rate):.0f}s more at the front "
        f"end's {rate:g} a second, if none arrives {sent_as})"
    )


def _number(value: float) -> str:
    """A median as a person reads it: 61,538 dollars, 36 months, 61.54 thousands."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    feature = variant["feature"]
    recent = ctx.logged(progress.require_started_at())
    now = float(recent[feature].tail(200).median()) if feature in recent else float("nan")
    champion = ctx.require_champion()
    before = float(contract.load_reference(ctx.mlflow, champion)[feature].median())
    return [
        "Which alert fired, and for which feature? Prometheus's Alerts page, or "
        "`mlops-lab drift check` for the whole table.",
        f"Recent traffic's median {feature} is {_number(now)}; the champion's training data has "
        f"{_number(before)}. Is that a different population, or the same one written "
        "differently?",
        "The model did not change; what it receives did. These applications come from the loan "
        f"front end: `mlops-lab logs front-end` and its configuration, {ctx.front_end_path}.",
        f"Put `{feature}` under `units` back to `{variant['right_unit']}` in "
        f"{ctx.front_end_path}; the drift window then refills with good rows within a minute or "
        "two.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from mlops_lab.lab_engine import golden

    variant = variant_of(VARIANTS, progress.state)
    since = progress.require_started_at()
    window = ctx.settings.drift_window_rows

    def window_refilled() -> bool:
        logged = ctx.logged(since)
        return len(_bad(logged, variant)) > 0 and len(_since_last_bad(logged, variant)) >= window

    # Automatic retrains paused while the fix settles: one started now would learn the incident.
    # Once the drift window holds only sound applications the alerts end; a retrain one started
    # before may have learned the incident: then the champion from before comes back. Without
    # Prometheus and Alertmanager (a cluster without the stack) no alert starts one.
    with golden.retrains_paused(ctx, "lab 02 fix"):
        _send(ctx, variant["feature"], variant["right_unit"])
        if ctx.runtime.monitoring_installed():
            # Twice the time the front end takes to send a window (1,000 rows at its default rate).
            within = 2 * window / ctx.settings.front_end_rate_per_s + 60
            ctx.wait_until(
                window_refilled, within, f"{window} applications in {variant['right_unit']}"
            )
            golden.await_retrain_alerts_resolved(ctx)
        golden.settle_retrains(ctx)
        if _learned_the_incident(ctx, variant, ctx.require_champion()):
            _roll_back_to_sound(ctx, variant, progress.state["champion"])


def _roll_back_to_sound(ctx: LabContext, variant: dict, before: str) -> None:
    from mlops_lab.lab_engine import golden
    from pipelines import registry

    sound = _newest_sound_version(ctx, variant, before)
    if sound is None:
        ctx.say(
            f"No version was trained without applications with {variant['feature']} "
            f"{variant['sent_as']}: `mlops-lab train`."
        )
        return
    if sound == before:
        golden.restore_lab_champion(ctx, before)
    else:
        registry.promote(ctx.mlflow, ctx.settings, sound, by="lab 02 reference fix")
        ctx.say(f"v{sound}, the newest version trained without the incident, is champion.")
    golden.wait_until_served(ctx, sound)


def _learned_the_incident(ctx: LabContext, variant: dict, version) -> bool:
    return len(_bad(contract.load_reference(ctx.mlflow, version), variant)) > 0


def _newest_sound_version(ctx: LabContext, variant: dict, before: str) -> str | None:
    """The version to roll back to: the champion from before the lab, unless it too learned
    applications in the wrong unit (then the newest version that did not)."""
    versions = sorted(ctx.versions(), key=lambda v: int(v.version), reverse=True)
    # The champion from before first, each version judged once (a judgement downloads its sample).
    ordered = sorted(versions, key=lambda v: str(v.version) != before)
    return next((str(v.version) for v in ordered if _trained_on_sound_data(ctx, variant, v)), None)


def _trained_on_sound_data(ctx: LabContext, variant: dict, version) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return not _learned_the_incident(ctx, variant, version)
    except (FileNotFoundError, MlflowException):  # no training sample to judge it by
        return False


def _buggy_rows(ctx: LabContext, variant: dict, since: float) -> int:
    return len(_bad(ctx.logged(since), variant))

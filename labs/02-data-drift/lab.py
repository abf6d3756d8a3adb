"""Lab 02: the front end starts sending annual_income in thousands of dollars."""

from __future__ import annotations

from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from platform_core import contract

FEATURE = "annual_income"
# Dollars: any plausible yearly income is far above this; thousands of dollars are far below.
DOLLARS_FLOOR = 5_000.0
# The incident's first applications, kept as evidence: the page goes out once they are logged.
MIN_EVIDENCE = 20


def start(ctx: LabContext) -> dict:
    ctx.set_front_end(income_unit="thousands")
    champion = ctx.require_champion()
    ctx.say(
        '[bold]Lab 02.[/] Prometheus: FeatureDriftDetected. Risk team: "since this morning the '
        'model flags far more applicants as likely to default, and nobody released a model."'
    )
    return {"champion": str(champion.version)}


def await_evidence(ctx: LabContext, state: dict) -> None:
    since = state["started_at"]
    ctx.wait_until(
        lambda: _buggy_rows(ctx, since) >= MIN_EVIDENCE,
        120,
        f"the front end's first applications with {FEATURE} in thousands",
    )


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    logged = ctx.logged(since)
    bad = _bad(logged)
    buggy = len(bad)
    champion = ctx.champion()
    reference_median = None
    learned = 0  # rows of the champion's training sample in thousands
    clean = None
    drift = None
    needed = ctx.settings.drift_min_rows
    if champion is not None:
        reference = contract.load_reference(ctx.mlflow, champion)
        reference_median = float(reference[FEATURE].median())
        learned = len(_bad(reference))
        clean = _since_last_bad(logged)
        if len(clean) >= needed:
            drift = _drift(ctx, champion, reference, clean)
    status = ctx.drift_status()
    raised = _raised_thresholds(ctx, status)
    # Not one row in thousands: a retrain the drift alert started learns from the incident's
    # traffic (its reference sample then holds some), and sound traffic looks drifted to it.
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
            f"traffic since the last bad row has {FEATURE} like the training data",
            drift is not None and not drift.drifted,
            f"{0 if clean is None else len(clean)} applications since the last one in "
            f"thousands; {FEATURE} does not drift from the champion's training sample (the "
            "platform's threshold). The monitor's alert resolves once its window holds none of "
            "the incident's rows.",
            _waiting_detail(ctx, clean, needed, drift),
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
            f"the champion's training sample has a median {FEATURE} of {reference_median:,.0f}"
            if sound
            else "",
            f"{learned} rows of the champion's training sample have {FEATURE} in thousands: "
            "it learned from the incident's traffic",
        ),
    ]


def _bad(logged):
    """Positions (oldest first) of the logged applications with the feature in thousands."""
    if FEATURE not in logged:
        return []
    return (logged[FEATURE] < DOLLARS_FLOOR).to_numpy().nonzero()[0]


def _since_last_bad(logged):
    """The applications after the last one in thousands (all of them while there was none)."""
    bad = _bad(logged)
    return logged.iloc[int(bad[-1]) + 1 :] if len(bad) else logged


def _drift(ctx: LabContext, champion, reference, frame):
    """The feature's drift in ``frame`` against the champion's training sample, judged here with
    the platform's own thresholds (a threshold raised in the monitor's configuration does not
    change this verdict)."""
    from monitoring.drift import compute_drift

    types = contract.load_feature_types(ctx.mlflow, champion)
    window = frame.tail(ctx.settings.drift_window_rows).reindex(columns=types.names)
    result = compute_drift(reference, window, types, ctx.settings)
    return next(f for f in result.features if f.feature == FEATURE)


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


def _waiting_detail(ctx: LabContext, clean, needed: int, drift) -> str:
    if clean is None:
        return "there is no champion to compare with"
    if drift is not None:
        return (
            f"{FEATURE} drifts in the {len(clean)} applications since the last one in "
            f"thousands ({drift.method} {drift.score:.2f} >= {drift.threshold})"
        )
    rate = ctx.settings.front_end_rate_per_s
    return (
        f"{len(clean)} applications since the last one in thousands; {needed} are needed to "
        f"judge (about {max(0.0, (needed - len(clean)) / rate):.0f}s more at the front end's "
        f"{rate:g} a second, if none arrives in thousands)"
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
    from mlops_lab.lab_engine import golden

    since = progress.require_started_at()
    window = ctx.settings.drift_window_rows

    def window_refilled() -> bool:
        logged = ctx.logged(since)
        return len(_bad(logged)) > 0 and len(_since_last_bad(logged)) >= window

    # Automatic retrains paused while the fix settles: one started now would learn the incident.
    # Once the drift window holds only sound applications the alerts end; a retrain one started
    # before may have learned the incident: then the champion from before comes back. Without
    # Prometheus and Alertmanager (a cluster without the stack) no alert starts one.
    with golden.retrains_paused(ctx, "lab 02 fix"):
        ctx.set_front_end(income_unit="dollars")
        if ctx.runtime.monitoring_installed():
            # Twice the time the front end takes to send a window (1,000 rows at its default rate).
            within = 2 * window / ctx.settings.front_end_rate_per_s + 60
            ctx.wait_until(window_refilled, within, f"{window} applications in dollars")
            golden.await_retrain_alerts_resolved(ctx)
        golden.settle_retrains(ctx)
        if _learned_the_incident(ctx, ctx.require_champion()):
            _roll_back_to_sound(ctx, progress.state["champion"])


def _roll_back_to_sound(ctx: LabContext, before: str) -> None:
    from mlops_lab.lab_engine import golden
    from pipelines import registry

    sound = _newest_sound_version(ctx, before)
    if sound is None:
        ctx.say("No version was trained without applications in thousands: `mlops-lab train`.")
        return
    if sound == before:
        golden.restore_lab_champion(ctx, before)
    else:
        registry.promote(ctx.mlflow, ctx.settings, sound, by="lab 02 reference fix")
        ctx.say(f"v{sound}, the newest version trained without the incident, is champion.")
    golden.wait_until_served(ctx, sound)


def _learned_the_incident(ctx: LabContext, version) -> bool:
    return len(_bad(contract.load_reference(ctx.mlflow, version))) > 0


def _newest_sound_version(ctx: LabContext, before: str) -> str | None:
    """The version to roll back to: the champion from before the lab, unless it too learned
    applications in thousands (then the newest version that did not)."""
    versions = sorted(ctx.versions(), key=lambda v: int(v.version), reverse=True)
    # The champion from before first, each version judged once (a judgement downloads its sample).
    ordered = sorted(versions, key=lambda v: str(v.version) != before)
    return next((str(v.version) for v in ordered if _trained_on_sound_data(ctx, v)), None)


def _trained_on_sound_data(ctx: LabContext, version) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return not _learned_the_incident(ctx, version)
    except (FileNotFoundError, MlflowException):  # no training sample to judge it by
        return False


def _buggy_rows(ctx: LabContext, since: float) -> int:
    return len(_bad(ctx.logged(since)))
